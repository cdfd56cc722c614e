-- One batch's quarantine rows recorded by the assets in $assets, by reason, most frequent
-- first, each with its first row (by manifest line) as an example (`rlfoundry ingest`'s
-- report). Duplicates and files a folder batch did not read are counted apart, not here.
SELECT reason, count(*) AS n,
       arg_min({'source_path': source_path, 'line': line, 'detail': detail},
               coalesce(line, 0)) AS example
FROM quarantine
WHERE batch = $batch AND list_contains($assets, asset) AND reason NOT IN ('duplicate', 'skipped')
GROUP BY reason
ORDER BY n DESC, reason;

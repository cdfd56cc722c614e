-- How many quarantine rows `rlfoundry quarantine` matches, by reason, most frequent first
-- (same filters as quarantine_rows, no limit).
SELECT reason, count(*) AS n
FROM quarantine
WHERE ($batch IS NULL OR batch = $batch)
  AND (len($reasons) = 0 OR list_contains($reasons, reason))
GROUP BY reason
ORDER BY n DESC, reason;

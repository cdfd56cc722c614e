-- Quarantine rows (`rlfoundry quarantine`): one batch's or every batch's ($batch NULL), only
-- the given reasons (all when $reasons is empty), at most $limit of them.
SELECT batch, asset, reason, source_path, line, detail, quarantined_at
FROM quarantine
WHERE ($batch IS NULL OR batch = $batch)
  AND (len($reasons) = 0 OR list_contains($reasons, reason))
ORDER BY batch, asset, source_path, line, reason
LIMIT $limit;

-- The clip-set fingerprints the rows of a label table ({table}) were made from, per batch
-- (NULL: rows written before labels recorded one). See clip_sets.sql.
SELECT batch, list(DISTINCT coalesce(clip_set, '')) AS clip_sets
FROM {table}
WHERE list_contains($batches, batch)
GROUP BY batch;

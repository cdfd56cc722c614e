-- The human verdicts pulled from Label Studio for one batch.
SELECT pair_id, clip_id, chosen, rejected, n_annotators, n_agree, annotators
FROM pairwise_verdicts
WHERE batch = $batch
ORDER BY clip_id, pair_id;

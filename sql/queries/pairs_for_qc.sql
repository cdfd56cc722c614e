-- A batch's preference pairs of the given sources, to push to Label Studio for human QC.
SELECT pair_id, clip_id, audio, chosen, rejected, source, margin
FROM preference_pairs
WHERE batch = $batch AND list_contains($sources, source)
ORDER BY clip_id, pair_id;

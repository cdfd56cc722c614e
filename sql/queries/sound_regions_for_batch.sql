-- Every region of a batch (all sources; `used` marks the ones its questions use).
SELECT clip_id, label, start_s, end_s, source, score, used, clip_set
FROM sound_regions
WHERE batch = $batch
ORDER BY clip_id, source, start_s, label;

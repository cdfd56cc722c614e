-- Per clip and class of a batch, its durations and the clip's concurrency.
SELECT clip_id, label, total_s, first_start_s, last_end_s, occurrences, overlaps_s, max_concurrent,
       max_concurrent_s, max_concurrent_at_s, regions_source, clip_set
FROM sound_durations
WHERE batch = $batch
ORDER BY clip_id, label;

-- The clips of one batch, optionally limited to some `split` tags, shortest first.
SELECT clip_id, source_path, duration_s, text, tags
FROM audio_clips
WHERE batch = $batch
  AND (len($splits) = 0 OR list_contains($splits, coalesce(tags ->> 'split', '')))
ORDER BY duration_s, clip_id;

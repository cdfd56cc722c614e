-- Labeled clips of the eval batches (optionally some `split` tags), in a stable order.
SELECT batch, clip_id, source_path, duration_s, text, tags
FROM audio_clips
WHERE list_contains($batches, batch)
  AND text IS NOT NULL AND trim(text) <> ''
  AND (len($splits) = 0 OR list_contains($splits, coalesce(tags ->> 'split', '')))
ORDER BY batch, duration_s, clip_id;

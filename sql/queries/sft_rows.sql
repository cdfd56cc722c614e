-- Verified transcripts of some batches: every ingested clip whose reference is not blank.
SELECT batch, clip_id, source_path AS audio, text
FROM audio_clips
WHERE list_contains($batches, batch)
  AND text IS NOT NULL AND trim(text) <> ''
ORDER BY batch, clip_id;

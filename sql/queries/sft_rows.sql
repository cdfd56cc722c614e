-- Verified transcripts of some batches: every ingested clip whose reference is not blank, with
-- its tags (keywords, language, accent...) and curriculum bucket when one was computed.
SELECT c.batch, c.clip_id, c.source_path AS audio, c.text, c.tags, b.bucket
FROM audio_clips AS c
LEFT JOIN curriculum_buckets AS b ON b.clip_id = c.clip_id AND b.batch = c.batch
WHERE list_contains($batches, c.batch)
  AND c.text IS NOT NULL AND trim(c.text) <> ''
ORDER BY c.batch, c.clip_id;

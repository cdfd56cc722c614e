-- Every question of a batch with its clip's file and length, in a stable order.
SELECT q.*, c.source_path, c.duration_s
FROM audio_questions AS q
JOIN audio_clips AS c ON c.clip_id = q.clip_id AND c.batch = q.batch
WHERE q.batch = $batch
ORDER BY q.clip_id, q.kind, q.subject, q.form;

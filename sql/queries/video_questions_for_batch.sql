-- Every question of a batch with its video's file and context frames, in a stable order.
SELECT q.*, s.source_path, s.context_paths
FROM video_questions AS q
JOIN video_segments AS s ON s.video_id = q.video_id AND s.batch = q.batch
WHERE q.batch = $batch
ORDER BY q.video_id, q.kind, q.group_id, q.form;

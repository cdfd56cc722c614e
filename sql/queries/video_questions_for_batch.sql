-- Every question of a batch with its video's file and context frames, in a stable order;
-- `qc` is the human status of its group (video_question_verdicts), else as stored
-- ('unreviewed').
SELECT q.* REPLACE (coalesce(v.status, q.qc) AS qc), s.source_path, s.context_paths
FROM video_questions AS q
JOIN video_segments AS s ON s.video_id = q.video_id AND s.batch = q.batch
LEFT JOIN video_question_verdicts AS v ON v.group_id = q.group_id AND v.batch = q.batch
WHERE q.batch = $batch
ORDER BY q.video_id, q.kind, q.group_id, q.form;

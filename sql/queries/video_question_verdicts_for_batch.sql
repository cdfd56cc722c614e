-- The human statuses of a batch's video questions (one row per question group pushed).
SELECT group_id, status, verdict, n_annotators, n_yes, agreement, second_review, task_id
FROM video_question_verdicts
WHERE batch = $batch
ORDER BY group_id;

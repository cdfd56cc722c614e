-- The human verdicts on a batch's points, pulled from Label Studio.
SELECT image_id, phrase, x, y, verdict, annotators, answers
FROM point_verdicts
WHERE batch = $batch
ORDER BY image_id, phrase, x, y;

-- Every video segment of a batch (frames before and after the cut).
SELECT *
FROM video_segments
WHERE batch = $batch
ORDER BY video_id;

-- Every description of a batch's videos (context and truth), with the video's file.
SELECT d.*, s.source_path
FROM video_descriptions AS d
JOIN video_segments AS s ON s.video_id = d.video_id AND s.batch = d.batch
WHERE d.batch = $batch
ORDER BY d.video_id, d.part;

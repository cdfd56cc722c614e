-- The videos of one batch, with their manifest tags (descriptions), in id order.
SELECT video_id, source_path, duration_s, fps, frame_count, width, height, text, tags
FROM videos
WHERE batch = $batch
ORDER BY video_id;

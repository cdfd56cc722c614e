-- Every caption of a batch, with its image's file.
SELECT c.image_id, i.source_path, c.caption, c.source, c.model, c.clip_set
FROM image_captions AS c
JOIN images AS i ON i.image_id = c.image_id AND i.batch = c.batch
WHERE c.batch = $batch
ORDER BY c.image_id;

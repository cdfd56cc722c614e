-- Every box of a batch, with its image's file and size, image by image, best first.
SELECT d.image_id, i.source_path, i.width, i.height, d.region, d.phrase,
       d.x0, d.y0, d.x1, d.y1, d.score, d.clip_set
FROM image_detections AS d
JOIN images AS i ON i.image_id = d.image_id AND i.batch = d.batch
WHERE d.batch = $batch
ORDER BY d.image_id, d.region;

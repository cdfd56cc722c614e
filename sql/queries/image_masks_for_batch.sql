-- Every mask of a batch, with its image's file and size, image by image.
SELECT m.image_id, i.source_path, i.width AS image_width, i.height AS image_height,
       m.region, m.phrase, m.x0, m.y0, m.x1, m.y1, m.score,
       m.mask_counts, m.height, m.width, m.area, m.clip_set
FROM image_masks AS m
JOIN images AS i ON i.image_id = m.image_id AND i.batch = m.batch
WHERE m.batch = $batch
ORDER BY m.image_id, m.region;

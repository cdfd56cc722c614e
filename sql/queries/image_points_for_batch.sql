-- Every sampled point of a batch, image by image.
SELECT image_id, region, phrase, point, x, y, clip_set
FROM image_points
WHERE batch = $batch
ORDER BY image_id, region, point;

-- The verified points of a batch with their mask and image: what human point QC asks about.
SELECT p.image_id, p.region, p.point, p.phrase, p.x, p.y,
       m.mask_counts, m.height, m.width, i.source_path, i.format
FROM image_point_checks AS p
JOIN image_masks AS m ON m.image_id = p.image_id AND m.region = p.region AND m.batch = p.batch
JOIN images AS i ON i.image_id = p.image_id AND i.batch = p.batch
WHERE p.batch = $batch AND p.verified
ORDER BY p.image_id, p.region, p.point;

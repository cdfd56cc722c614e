-- The images of one batch, with the manifest's caption when it has one.
SELECT image_id, source_path, width, height, mode, text
FROM images
WHERE batch = $batch
ORDER BY image_id;

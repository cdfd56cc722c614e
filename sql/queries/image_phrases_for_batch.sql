-- Every image of a batch that has phrases, its phrases in caption order, and its file.
SELECT p.image_id, i.source_path, i.width, i.height,
       list(p.phrase ORDER BY p.phrase_index) AS phrases, any_value(p.clip_set) AS clip_set
FROM image_phrases AS p
JOIN images AS i ON i.image_id = p.image_id AND i.batch = p.batch
WHERE p.batch = $batch
GROUP BY p.image_id, i.source_path, i.width, i.height
ORDER BY p.image_id;

-- Every mask of a batch with its verified points (an empty list: none passed), its image,
-- caption and the models that made it: what the pointing dataset is built from.
SELECT m.image_id, m.region, m.phrase, m.mask_counts, m.height, m.width, m.score,
       i.source_path, i.mode,
       c.caption, c.source AS caption_source, c.model AS captioner, c.weights AS caption_weights,
       d.model AS detector, d.weights AS detector_weights,
       m.model AS segmenter, m.weights AS segmenter_weights,
       coalesce(list([p.x, p.y] ORDER BY p.point) FILTER (WHERE p.verified), []) AS points,
       any_value(pt.strategy) AS point_strategy,
       m.clip_set
FROM image_masks AS m
JOIN images AS i ON i.image_id = m.image_id AND i.batch = m.batch
LEFT JOIN image_captions AS c ON c.image_id = m.image_id AND c.batch = m.batch
LEFT JOIN image_detections AS d
       ON d.image_id = m.image_id AND d.region = m.region AND d.batch = m.batch
LEFT JOIN image_point_checks AS p
       ON p.image_id = m.image_id AND p.region = m.region AND p.batch = m.batch
LEFT JOIN image_points AS pt
       ON pt.image_id = p.image_id AND pt.region = p.region AND pt.point = p.point
      AND pt.batch = p.batch
WHERE m.batch = $batch
GROUP BY ALL
ORDER BY m.image_id, m.region;

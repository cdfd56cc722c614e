-- The clips of a batch whose human review (Label Studio) was accepted, with their regions:
-- sound_regions' `human` source.
SELECT clip_id, status, regions
FROM sound_region_reviews
WHERE batch = $batch AND status = 'accepted'
ORDER BY clip_id;

-- Counts of rows that break the audio_clips contract in one batch; all must be zero.
SELECT 'bad_clip_id' AS problem, count(*) FROM audio_clips
 WHERE batch = $batch AND NOT regexp_full_match(clip_id, '[0-9a-f]{64}')
UNION ALL
SELECT 'non_positive_duration', count(*) FROM audio_clips
 WHERE batch = $batch AND NOT duration_s > 0
UNION ALL
SELECT 'duplicate_clip_id', count(*) - count(DISTINCT clip_id) FROM audio_clips
 WHERE batch = $batch
UNION ALL
SELECT 'empty_text', count(*) FROM audio_clips
 WHERE batch = $batch AND text IS NOT NULL AND trim(text) = '';

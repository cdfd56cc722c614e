-- The clips of one batch without a transcript, counted by what they are (`rlfoundry ingest`'s
-- report): `regions`, an audio-questions scene, labeled by its sound regions (a `regions`
-- tag), which needs no transcript; `segment`, a span of a recording in a batch segmented by
-- voice activity (`$vad`), unlabeled by design; `other`, a clip whose transcript is missing.
SELECT CASE WHEN tags ->> 'regions' IS NOT NULL THEN 'regions'
            WHEN $vad AND source_path LIKE '%#t=%' THEN 'segment'
            ELSE 'other' END AS kind,
       count(*) AS n
FROM audio_clips
WHERE batch = $batch AND (text IS NULL OR trim(text) = '')
GROUP BY kind
ORDER BY kind;

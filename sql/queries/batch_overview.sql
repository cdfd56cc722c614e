-- Every registered batch with what it holds, in registration order (`rlfoundry batches`,
-- `rlfoundry ingest`'s report): its media counts (audio clips, images, videos), how many
-- carry a text (a transcript, caption or description; `transcribed`: audio clips only), the
-- rows it quarantined (duplicates and files a folder batch did not read counted apart), and
-- when its media was last ingested.
WITH media AS (
    SELECT batch, count(*) AS clips, 0 AS images, 0 AS videos,
           count(nullif(trim(text), '')) AS labeled, count(nullif(trim(text), '')) AS transcribed,
           max(ingested_at) AS ingested_at
    FROM audio_clips GROUP BY batch
    UNION ALL
    SELECT batch, 0, count(*), 0, count(nullif(trim(text), '')), 0, max(ingested_at)
    FROM images GROUP BY batch
    UNION ALL
    SELECT batch, 0, 0, count(*), count(nullif(trim(text), '')), 0, max(ingested_at)
    FROM videos GROUP BY batch
), held AS (
    SELECT batch, sum(clips) AS clips, sum(images) AS images, sum(videos) AS videos,
           sum(labeled) AS labeled, sum(transcribed) AS transcribed,
           max(ingested_at) AS ingested_at
    FROM media GROUP BY batch
), refused AS (
    SELECT batch,
           count(*) FILTER (WHERE reason NOT IN ('duplicate', 'skipped')) AS quarantined,
           count(*) FILTER (WHERE reason = 'duplicate') AS duplicates,
           count(*) FILTER (WHERE reason = 'skipped') AS skipped
    FROM quarantine GROUP BY batch
)
SELECT b.batch, coalesce(b.role, 'train') AS role, b.source, b.source_kind, b.registered_at,
       coalesce(h.clips, 0)::BIGINT AS clips, coalesce(h.images, 0)::BIGINT AS images,
       coalesce(h.videos, 0)::BIGINT AS videos, coalesce(h.labeled, 0)::BIGINT AS labeled,
       coalesce(h.transcribed, 0)::BIGINT AS transcribed,
       coalesce(r.quarantined, 0) AS quarantined, coalesce(r.duplicates, 0) AS duplicates,
       coalesce(r.skipped, 0) AS skipped, h.ingested_at
FROM batches b
LEFT JOIN held h USING (batch)
LEFT JOIN refused r USING (batch)
WHERE $batch IS NULL OR b.batch = $batch
ORDER BY b.registered_at, b.batch;

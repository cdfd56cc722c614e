-- Content hashes of a batch about to be published that other batches already hold.
-- Run under the ingest lock, just before the batch's new partition replaces its old one:
-- of two concurrent ingests of the same file, the one that committed first keeps it.
-- {table} and {id_column} are filled from code (never from input); `incoming` is a
-- registered relation of the new partition's ids. With several holders, the first batch
-- by name is named, so the answer is deterministic.
SELECT DISTINCT ON (held.id) held.id, held.source_path, held.batch
FROM (SELECT {id_column} AS id, source_path, batch FROM {table}) AS held
WHERE held.batch <> $batch AND held.id IN (SELECT id FROM incoming)
ORDER BY held.id, held.batch;

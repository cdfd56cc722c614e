-- Content hashes already ingested by other batches, for cross-batch deduplication, with the
-- text (transcript or caption) stored with each, so a duplicate carrying another text is told apart.
-- {table} and {id_column} are filled from code (never from input); the partition being written is excluded
-- so that re-materializing a batch never counts its own rows as duplicates.
SELECT id, source_path, batch, text
FROM (SELECT {id_column} AS id, source_path, batch, text FROM {table})
WHERE batch <> $batch;

-- Registered batches with their role (batches registered before roles existed count as train).
SELECT batch, coalesce(role, 'train') AS role, source, registered_at
FROM batches
ORDER BY registered_at, batch;

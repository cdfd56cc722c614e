-- Batches that hold rows in a task's media table ({table}, e.g. audio_clips): the ones that
-- task labels and trains on (an image batch registered with role 'train' is not a speech
-- train batch).
SELECT DISTINCT batch FROM {table} ORDER BY batch;

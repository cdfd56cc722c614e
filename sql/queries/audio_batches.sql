-- Batches that hold audio clips: the ones the speech loop labels and trains on (an image or
-- video batch registered with role 'train' is not a speech train batch).
SELECT DISTINCT batch FROM audio_clips ORDER BY batch;

-- Preference pairs of some batches, in the trainer's export shape.
SELECT batch, prompt, chosen, rejected, audio, clip_id, pair_id, source
FROM preference_pairs
WHERE list_contains($batches, batch)
ORDER BY batch, clip_id, pair_id;

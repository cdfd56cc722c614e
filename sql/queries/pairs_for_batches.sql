-- Preference pairs of some batches, in the trainer's export shape, with each clip's verified
-- transcript as `reference` (what an SFT term imitates under sft_target = 'reference').
SELECT p.batch, p.prompt, p.chosen, p.rejected, p.audio, p.clip_id, p.pair_id, p.source,
       nullif(trim(c.text), '') AS reference
FROM preference_pairs AS p
LEFT JOIN audio_clips AS c ON c.clip_id = p.clip_id AND c.batch = p.batch
WHERE list_contains($batches, p.batch)
ORDER BY p.batch, p.clip_id, p.pair_id;

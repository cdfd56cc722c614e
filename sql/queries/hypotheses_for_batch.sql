-- Every hypothesis of a batch with its clip's reference, audio path and duration.
SELECT h.clip_id, c.source_path, c.duration_s, c.text AS reference,
       h.kind, h.rank, h.text, h.avg_logprob, h.round, h.clip_set
FROM asr_hypotheses AS h
JOIN audio_clips AS c ON c.clip_id = h.clip_id AND c.batch = h.batch
WHERE h.batch = $batch
ORDER BY h.clip_id, h.kind, h.rank;

-- The fingerprint of each batch's media set in {table}: md5 over its ids ({id_column}) and
-- texts, in id order. Labels made from a batch record the fingerprint of the set they were
-- made from (their `clip_set` column); a different one now means the batch was re-ingested
-- with other media or transcripts since, and those labels are stale.
-- {table} and {id_column} are filled from code, never from input.
SELECT batch,
       md5(string_agg({id_column} || chr(31) || coalesce(text, ''), chr(30)
                      ORDER BY {id_column})) AS clip_set
FROM {table}
WHERE list_contains($batches, batch)
GROUP BY batch;

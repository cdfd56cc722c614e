-- Reward components per hypothesis, for RL objectives to weigh and for people to inspect.
CREATE TABLE reward_shaping (
    batch                VARCHAR NOT NULL,
    clip_id              VARCHAR NOT NULL,
    kind                 VARCHAR NOT NULL,
    rank                 INTEGER NOT NULL,
    text                 VARCHAR NOT NULL,
    avg_logprob          DOUBLE,
    accuracy_wer         DOUBLE NOT NULL,  -- 1 − WER, clipped to [0, 1]
    accuracy_cer         DOUBLE NOT NULL,  -- 1 − CER, clipped to [0, 1]
    hallucination_ratio  DOUBLE NOT NULL,  -- inserted words / hypothesis words
    empty                DOUBLE NOT NULL,  -- 1 when nothing was transcribed
    repetition           DOUBLE NOT NULL,  -- repeated word trigrams / trigrams
    length_ratio         DOUBLE,           -- hypothesis / reference words (NULL: empty reference)
    overlong             DOUBLE NOT NULL,  -- 1 when more words than the audio can hold
    wer                  DOUBLE,
    cer                  DOUBLE,
    clip_set             VARCHAR,           -- fingerprint of the clip set it was made from (clip_sets.sql)
    created_at           TIMESTAMP WITH TIME ZONE NOT NULL
);

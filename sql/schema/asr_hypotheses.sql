-- N-best beam hypotheses and temperature samples per clip, each with its teacher-forced score.
CREATE TABLE asr_hypotheses (
    batch        VARCHAR NOT NULL,
    clip_id      VARCHAR NOT NULL,
    model        VARCHAR NOT NULL,  -- the model that produced it (path or id)
    kind         VARCHAR NOT NULL,  -- 'greedy' | 'beam' | 'sample'
    rank         INTEGER NOT NULL,  -- within its kind
    temperature  DOUBLE,            -- NULL for greedy and beams
    seed         BIGINT NOT NULL,
    text         VARCHAR NOT NULL,
    avg_logprob  DOUBLE NOT NULL,   -- mean token log-probability, teacher-forced
    num_tokens   INTEGER NOT NULL,
    round        INTEGER,           -- self-improving round: 1 + promotions before labeling
    clip_set     VARCHAR,           -- fingerprint of the clip set it was made from (clip_sets.sql)
    created_at   TIMESTAMP WITH TIME ZONE NOT NULL
);

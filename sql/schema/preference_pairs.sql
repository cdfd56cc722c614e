-- Chosen/rejected transcript pairs per clip: mined from scored N-best, or from human judgements.
CREATE TABLE preference_pairs (
    batch          VARCHAR NOT NULL,
    pair_id        VARCHAR NOT NULL,  -- stable hash of (clip, chosen, rejected)
    clip_id        VARCHAR NOT NULL,
    audio          VARCHAR NOT NULL,  -- the clip's source path
    prompt         VARCHAR NOT NULL,  -- the decoder prompt, as text
    chosen         VARCHAR NOT NULL,
    rejected       VARCHAR NOT NULL,
    source         VARCHAR NOT NULL,  -- 'model' (mined by WER) | 'human' (Label Studio)
    strategy       VARCHAR,           -- mining strategy, for model pairs
    chosen_wer     DOUBLE,
    rejected_wer   DOUBLE,
    margin         DOUBLE,            -- rejected − chosen on the mining metric
    chosen_kind    VARCHAR,
    rejected_kind  VARCHAR,
    annotators     VARCHAR[],         -- for human pairs
    agreement      DOUBLE,            -- share of annotators agreeing with the majority
    round          INTEGER,           -- round of the hypotheses it was mined from
    clip_set       VARCHAR,           -- fingerprint of the clip set it was made from (clip_sets.sql)
    created_at     TIMESTAMP WITH TIME ZONE NOT NULL
);

-- One row per evaluated utterance: the model's transcript and its error counts.
CREATE TABLE asr_eval (
    batch          VARCHAR NOT NULL,
    eval_name      VARCHAR NOT NULL,  -- e.g. 'baseline'
    model          VARCHAR NOT NULL,
    clip_id        VARCHAR NOT NULL,
    reference      VARCHAR NOT NULL,
    hypothesis     VARCHAR NOT NULL,
    substitutions  INTEGER NOT NULL,
    deletions      INTEGER NOT NULL,
    insertions     INTEGER NOT NULL,
    ref_words      INTEGER NOT NULL,
    char_errors    INTEGER NOT NULL,
    ref_chars      INTEGER NOT NULL,
    tags           VARCHAR NOT NULL,
    round          INTEGER,           -- loop evaluations: the round (NULL: per-batch baseline)
    created_at     TIMESTAMP WITH TIME ZONE NOT NULL
);

-- One row per trained checkpoint (partition = model_id): what it was trained on, how, how it scored.
CREATE TABLE model_registry (
    batch          VARCHAR NOT NULL,  -- partition key: the model_id
    model_id       VARCHAR NOT NULL,  -- '<stage>-<loop>'
    family         VARCHAR NOT NULL,  -- model family: 'asr' | 'vlm' | 'alm'
    loop           VARCHAR,           -- the loop partition that trained it
    stage          VARCHAR NOT NULL,  -- 'sft' | 'dpo' | 'mpo'
    checkpoint     VARCHAR NOT NULL,  -- transformers folder (safetensors) the model loads from
    base_model     VARCHAR NOT NULL,  -- the model it was tuned from (also the DPO reference)
    train_batches  VARCHAR[] NOT NULL,
    eval_batches   VARCHAR[],
    config         VARCHAR NOT NULL,  -- JSON: the training config as run
    train_metrics  VARCHAR,           -- JSON: last logged training metrics
    eval_wer       DOUBLE,            -- pooled WER on eval_batches (NULL until evaluated)
    eval_cer       DOUBLE,
    incumbent      VARCHAR,           -- the model it was compared with
    incumbent_wer  DOUBLE,
    promoted       BOOLEAN NOT NULL,
    promoted_at    TIMESTAMP WITH TIME ZONE,
    run_id         VARCHAR NOT NULL,  -- Dagster run that trained it
    round          INTEGER,           -- self-improving round it was trained in
    created_at     TIMESTAMP WITH TIME ZONE NOT NULL
);

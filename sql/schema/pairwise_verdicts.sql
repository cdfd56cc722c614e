-- Human verdicts on a batch's transcript pairs, pulled from Label Studio (one row per pair with
-- a majority; split votes give none). preference_pairs reads them: a verdict replaces the mined
-- pair of the same clip and texts.
CREATE TABLE pairwise_verdicts (
    batch              VARCHAR NOT NULL,
    pair_id            VARCHAR NOT NULL,  -- the task's pair id (the mined pair's)
    clip_id            VARCHAR NOT NULL,
    chosen             VARCHAR NOT NULL,  -- the annotators' majority
    rejected           VARCHAR NOT NULL,
    model_chosen       VARCHAR,           -- the text the model preferred (the task's prediction)
    agrees_with_model  BOOLEAN,
    n_annotators       INTEGER NOT NULL,
    n_agree            INTEGER NOT NULL,  -- annotators who chose `chosen`
    agreement          DOUBLE NOT NULL,   -- n_agree / n_annotators
    annotators         VARCHAR[],         -- Label Studio user ids (or emails)
    second_review      BOOLEAN NOT NULL,  -- the task was routed to a second annotator
    task_id            BIGINT,            -- Label Studio task id
    project_id         BIGINT,            -- Label Studio project id
    pulled_at          TIMESTAMP WITH TIME ZONE NOT NULL
);

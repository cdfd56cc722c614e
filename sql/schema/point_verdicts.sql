-- Human verdicts on a batch's verified points, pulled from Label Studio ("Is the point on
-- <phrase>?"): one row per point someone answered. pointing_dataset reads them and, by its
-- `human_qc` setting, keeps only the points whose verdict is yes.
CREATE TABLE point_verdicts (
    batch          VARCHAR NOT NULL,
    point_id       VARCHAR NOT NULL,  -- hash of (image, phrase, x, y): what the question was about
    image_id       VARCHAR NOT NULL,
    region         INTEGER,           -- the mask's number when the task was pushed
    point          INTEGER,           -- the point's number within its mask then
    phrase         VARCHAR NOT NULL,
    x              DOUBLE NOT NULL,   -- original pixels
    y              DOUBLE NOT NULL,
    verdict        VARCHAR,           -- 'yes' | 'no' (the majority); NULL: an even split
    n_annotators   INTEGER NOT NULL,
    n_yes          INTEGER NOT NULL,
    n_agree        INTEGER NOT NULL,  -- annotators who gave the majority answer
    agreement      DOUBLE NOT NULL,   -- n_agree / n_annotators
    annotators     VARCHAR[],         -- Label Studio user ids (or emails), in answer order
    answers        VARCHAR[],         -- each annotator's 'yes' | 'no', aligned with annotators
    second_review  BOOLEAN NOT NULL,  -- the task was routed to a second annotator
    task_id        BIGINT,            -- Label Studio task id
    project_id     BIGINT,            -- Label Studio project id
    pulled_at      TIMESTAMP WITH TIME ZONE NOT NULL
);

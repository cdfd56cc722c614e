-- Human validation of a batch's video questions, pulled from Label Studio (video_qc_verdicts):
-- one row per question pushed (a question group: both forms share one task, keyed by its
-- group_id). video_questions_for_batch.sql joins `status` in as every form's `qc`, and
-- video_qa_dataset keeps, once the batch has any verdict, only the accepted questions.
CREATE TABLE video_question_verdicts (
    batch          VARCHAR NOT NULL,
    group_id       VARCHAR NOT NULL,  -- video_questions.group_id: the question, both its forms
    status         VARCHAR NOT NULL,  -- 'accepted' (majority yes) | 'rejected' (majority no)
                                      -- | 'disputed' (an even split) | 'unreviewed' (no vote yet)
    verdict        VARCHAR,           -- 'yes' | 'no' (the majority); NULL: an even split or no vote
    n_annotators   INTEGER NOT NULL,  -- annotators who answered yes or no
    n_yes          INTEGER NOT NULL,
    agreement      DOUBLE,            -- share of annotators who gave the majority answer (NULL: none)
    annotators     VARCHAR[],         -- Label Studio user ids (or emails), in answer order
    answers        VARCHAR[],         -- each annotator's 'yes' | 'no', aligned with annotators
    comments       VARCHAR,           -- JSON {annotator: comment} (why a question is wrong)
    second_review  BOOLEAN NOT NULL,  -- the task was routed to a second annotator
    task_id        BIGINT,            -- Label Studio task id
    project_id     BIGINT,            -- Label Studio project id
    pulled_at      TIMESTAMP WITH TIME ZONE NOT NULL
);

-- Temporal questions about a batch's clips with their verifiable answers: one row per form
-- ('open', or 'choice' with four options and the right letter balanced over the batch).
CREATE TABLE audio_questions (
    batch          VARCHAR NOT NULL,
    question_id    VARCHAR NOT NULL,  -- stable hash of (clip, kind, subject, form)
    clip_id        VARCHAR NOT NULL,
    kind           VARCHAR NOT NULL,  -- longest | shortest | starts_first | starts_last | max_concurrent | duration
    form           VARCHAR NOT NULL,  -- 'open' | 'choice'
    subject        VARCHAR,           -- the class a duration question is about
    question       VARCHAR NOT NULL,  -- the question without hint or options
    prompt         VARCHAR NOT NULL,  -- what the model is asked (options and hint included)
    answer         VARCHAR NOT NULL,  -- the letter (choice), the label (text) or the number (number)
    answer_text    VARCHAR NOT NULL,  -- the answer itself (the right option's text for choice)
    answer_type    VARCHAR NOT NULL,  -- 'choice' | 'text' | 'number'
    value          DOUBLE,            -- the true number (number questions)
    tolerance      DOUBLE,            -- a number within this of `value` is right (open numbers)
    options        VARCHAR[] NOT NULL,  -- A-D for choice; empty for open
    measured       VARCHAR NOT NULL,  -- JSON: the values the answer was decided on
    regions_source VARCHAR NOT NULL,  -- where the regions came from: 'manifest' | 'human' | 'model:<name>'
    seed           BIGINT NOT NULL,   -- seed of the distractors and letters
    clip_set       VARCHAR,
    created_at     TIMESTAMP WITH TIME ZONE NOT NULL
);

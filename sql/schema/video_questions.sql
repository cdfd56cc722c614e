-- Questions about what happens next in a batch's videos: one row per form ('choice' with four
-- options and the right letter balanced over the batch, 'open'); both forms of a question
-- share its group_id (labeling/video_qa/chain.py).
CREATE TABLE video_questions (
    batch               VARCHAR NOT NULL,
    question_id         VARCHAR NOT NULL,  -- stable hash of (group, form)
    group_id            VARCHAR NOT NULL,  -- stable hash of (video, kind, question, answer)
    video_id            VARCHAR NOT NULL,
    kind                VARCHAR NOT NULL,  -- 'next_event' (LLM) | 'rest_of_video' (template)
    form                VARCHAR NOT NULL,  -- 'choice' | 'open'
    question            VARCHAR NOT NULL,  -- the question (the open form's with its hint)
    prompt              VARCHAR NOT NULL,  -- what the model is asked (note, options, hint)
    answer              VARCHAR NOT NULL,  -- the letter (choice) or the answer's text (open)
    answer_text         VARCHAR NOT NULL,  -- the answer itself (the right option's text)
    answer_type         VARCHAR NOT NULL,  -- 'choice' | 'text'
    options             VARCHAR[] NOT NULL,  -- A-D for choice; empty for open
    question_source     VARCHAR NOT NULL,  -- 'model:<id>' | 'template'
    context_source      VARCHAR NOT NULL,  -- where the descriptions came from:
    truth_source        VARCHAR NOT NULL,  --   'human' | 'manifest' | 'model:<id>'
    truth_description   VARCHAR NOT NULL,
    support             DOUBLE NOT NULL,   -- share of the answer's words the truth holds
    distractor_support  DOUBLE,            -- the highest distractor's (NULL: none)
    answerable_blind    BOOLEAN,           -- the text LLM picked the right option without the video (NULL: not tested)
    blind_pick          VARCHAR,           -- the letter it picked (NULL: none, or not tested)
    blind_probabilities DOUBLE[],          -- its probability of A-D (NULL without logits)
    blind_margin        DOUBLE,            -- P(right) - max P(other) (NULL without logits)
    blind_method        VARCHAR,           -- 'letter_probabilities' | 'generated_text'
    curriculum_bucket   VARCHAR NOT NULL,  -- 'choice/obvious' | 'choice/subtle' | 'open/obvious' | 'open/subtle'
    curriculum_order    INTEGER NOT NULL,  -- its place in that order (0 first)
    bucket              VARCHAR NOT NULL,  -- the spine's 'easy' | 'medium' | 'hard'
    qc                  VARCHAR NOT NULL,  -- 'unreviewed' until human validation: 'accepted' | 'rejected' | 'disputed'
    seed                BIGINT NOT NULL,   -- seed of the shuffled options and letters
    weights             VARCHAR NOT NULL,  -- 'random-tiny' | 'pretrained' | 'none': the models behind it (chain.weights_of)
    clip_set            VARCHAR,
    created_at          TIMESTAMP WITH TIME ZONE NOT NULL
);

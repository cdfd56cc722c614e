-- The noun phrases of each caption (spaCy): what the detector is asked to find.
CREATE TABLE image_phrases (
    batch           VARCHAR NOT NULL,
    image_id        VARCHAR NOT NULL,
    phrase          VARCHAR NOT NULL,
    phrase_index    INTEGER NOT NULL,  -- order in the caption
    caption_source  VARCHAR NOT NULL,  -- 'manifest' | 'model:<captioner>'
    parser          VARCHAR NOT NULL,  -- the spaCy pipeline, 'spacy:<name>-<version>'
    clip_set        VARCHAR,
    created_at      TIMESTAMP WITH TIME ZONE NOT NULL
);

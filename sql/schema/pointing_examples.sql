-- The pointing dataset: one "point at <phrase>" example per (image, phrase), every instance
-- verified. Masks are COCO RLE in original pixels (JSON list), points[i] the verified [x, y] points
-- of masks[i].
CREATE TABLE pointing_examples (
    batch           VARCHAR NOT NULL,
    example_id      VARCHAR NOT NULL,  -- stable hash of (image, phrase)
    image_id        VARCHAR NOT NULL,
    image           VARCHAR NOT NULL,  -- the original file
    image_file      VARCHAR NOT NULL,  -- the 8-bit RGB file the dataset's `images` holds
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    phrase          VARCHAR NOT NULL,
    prompt          VARCHAR NOT NULL,  -- 'Point at <phrase>.'
    masks           VARCHAR NOT NULL,  -- JSON list of COCO RLE dicts
    points          VARCHAR NOT NULL,  -- JSON: per mask, its list of [x, y]
    caption         VARCHAR,
    caption_source  VARCHAR,           -- 'manifest' | 'model:<captioner>'
    detector        VARCHAR,
    segmenter       VARCHAR,
    point_strategy  VARCHAR,
    weights         VARCHAR,           -- 'random-tiny' when any model of the chain was, else 'pretrained'
    qc_verdicts     VARCHAR,           -- JSON, per mask, per point: null or {"verdict", "votes": {annotator: answer}}
    qc_annotators   VARCHAR[],         -- who answered on any of its points (Label Studio user ids)
    human_verified  BOOLEAN,           -- every point has a human yes verdict
    clip_set        VARCHAR,
    created_at      TIMESTAMP WITH TIME ZONE NOT NULL
);

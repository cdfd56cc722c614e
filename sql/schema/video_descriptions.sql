-- What happens in each part of a video (context: before the cut; truth: after it), and who
-- said so: a person, the manifest, or the VLM (labeling/video_qa/descriptions.py).
CREATE TABLE video_descriptions (
    batch        VARCHAR NOT NULL,
    video_id     VARCHAR NOT NULL,
    part         VARCHAR NOT NULL,  -- 'context' | 'truth'
    description  VARCHAR NOT NULL,
    source       VARCHAR NOT NULL,  -- 'human' | 'manifest' | 'model:<id>'
    model        VARCHAR,           -- the VLM's id (NULL for given descriptions)
    weights      VARCHAR,           -- 'random-tiny' | 'pretrained' (NULL for given descriptions)
    frames_shown INTEGER,           -- frames the VLM was shown (NULL for given descriptions)
    clip_set     VARCHAR,
    created_at   TIMESTAMP WITH TIME ZONE NOT NULL
);

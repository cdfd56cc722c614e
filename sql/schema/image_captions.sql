-- One caption per image of a batch: the manifest's text when it has one, else the captioner's.
CREATE TABLE image_captions (
    batch        VARCHAR NOT NULL,
    image_id     VARCHAR NOT NULL,
    caption      VARCHAR NOT NULL,
    source       VARCHAR NOT NULL,  -- 'manifest' | 'model'
    model        VARCHAR,           -- the captioner (path or id) when source = 'model'
    weights      VARCHAR,           -- 'pretrained' | 'random-tiny' when source = 'model'
    clip_set     VARCHAR,           -- fingerprint of the image set it was made from (clip_sets.sql)
    created_at   TIMESTAMP WITH TIME ZONE NOT NULL
);

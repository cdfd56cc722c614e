-- Sound regions of a batch's clips, from every source a clip has: 'manifest' (its manifest
-- line's `regions`), 'human' (marked in Label Studio) and 'model:<name>' (a region detector:
-- silero-vad for speech). `used` marks the source the clip's durations and questions use
-- (human, else manifest, else the model; see labeling/audio_qa/chain.py).
CREATE TABLE sound_regions (
    batch      VARCHAR NOT NULL,
    clip_id    VARCHAR NOT NULL,
    label      VARCHAR NOT NULL,  -- the sound class ('speech', 'music', 'noise', ...)
    start_s    DOUBLE NOT NULL,   -- seconds from the clip's start
    end_s      DOUBLE NOT NULL,
    source     VARCHAR NOT NULL,  -- 'manifest' | 'human' | 'model:<name>'
    score      DOUBLE,            -- the model's confidence; NULL for given regions
    used       BOOLEAN NOT NULL,  -- this region's source is the one the clip's questions use
    clip_set   VARCHAR,           -- fingerprint of the clip set it was made from (clip_sets.sql)
    created_at TIMESTAMP WITH TIME ZONE NOT NULL
);

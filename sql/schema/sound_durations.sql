-- Per clip and sound class (of the regions its questions use): how long, when, how often,
-- with what; plus the clip's concurrency (the same on each of its rows).
CREATE TABLE sound_durations (
    batch               VARCHAR NOT NULL,
    clip_id             VARCHAR NOT NULL,
    label               VARCHAR NOT NULL,
    total_s             DOUBLE NOT NULL,   -- seconds the class is heard (regions merged)
    first_start_s       DOUBLE NOT NULL,
    last_end_s          DOUBLE NOT NULL,
    occurrences         INTEGER NOT NULL,  -- separate occurrences (merged regions)
    overlaps_s          VARCHAR NOT NULL,  -- JSON {other class: seconds heard together}
    max_concurrent      INTEGER NOT NULL,  -- the most classes heard at once in the clip
    max_concurrent_s    DOUBLE NOT NULL,   -- the longest unbroken stretch at that count
    max_concurrent_at_s DOUBLE,            -- where that stretch starts
    regions_source      VARCHAR NOT NULL,  -- 'manifest' | 'human' | 'model:<name>'
    clip_set            VARCHAR,
    created_at          TIMESTAMP WITH TIME ZONE NOT NULL
);

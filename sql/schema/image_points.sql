-- Points sampled inside each mask, in original pixels.
CREATE TABLE image_points (
    batch       VARCHAR NOT NULL,
    image_id    VARCHAR NOT NULL,
    region      INTEGER NOT NULL,
    phrase      VARCHAR NOT NULL,
    point       INTEGER NOT NULL,  -- the point's number within its mask
    x           DOUBLE NOT NULL,
    y           DOUBLE NOT NULL,
    strategy    VARCHAR NOT NULL,  -- 'centroid' | 'random' | 'edge_aware'
    seed        BIGINT NOT NULL,   -- the run's seed (a mask's own: point_seed(image_id, phrase, seed=seed))
    detail      VARCHAR,           -- how it was found
    clip_set    VARCHAR,
    created_at  TIMESTAMP WITH TIME ZONE NOT NULL
);

-- Boxes of each phrase (open-vocabulary detector, then per-phrase NMS), in original pixels.
CREATE TABLE image_detections (
    batch       VARCHAR NOT NULL,
    image_id    VARCHAR NOT NULL,
    region      INTEGER NOT NULL,  -- the box's number in its image, best score first
    phrase      VARCHAR NOT NULL,
    x0          DOUBLE NOT NULL,   -- (x0, y0, x1, y1): pixel edges, x right, y down
    y0          DOUBLE NOT NULL,
    x1          DOUBLE NOT NULL,
    y1          DOUBLE NOT NULL,
    score       DOUBLE NOT NULL,
    model       VARCHAR NOT NULL,  -- the detector (path or id)
    weights     VARCHAR NOT NULL,  -- 'pretrained' | 'random-tiny'
    clip_set    VARCHAR,
    created_at  TIMESTAMP WITH TIME ZONE NOT NULL
);

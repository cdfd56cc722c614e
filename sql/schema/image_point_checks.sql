-- Geometric verification of every point: verdict, reasons, and what each check measured.
CREATE TABLE image_point_checks (
    batch                 VARCHAR NOT NULL,
    image_id              VARCHAR NOT NULL,
    region                INTEGER NOT NULL,
    phrase                VARCHAR NOT NULL,
    point                 INTEGER NOT NULL,
    x                     DOUBLE NOT NULL,
    y                     DOUBLE NOT NULL,
    verified              BOOLEAN NOT NULL,
    reason                VARCHAR,           -- the first failure's reason (NULL when verified)
    reasons               VARCHAR[],         -- every failure's reason
    detail                VARCHAR,           -- the failures' measured values, in words
    point_in_mask         DOUBLE,            -- NULL: not measured (bad input)
    edge_distance_px      DOUBLE,
    box_iou               DOUBLE,
    area_share            DOUBLE,
    other_masks_at_point  DOUBLE,
    clip_set              VARCHAR,
    created_at            TIMESTAMP WITH TIME ZONE NOT NULL
);

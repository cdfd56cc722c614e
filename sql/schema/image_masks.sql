-- One mask per detected box (box-prompted segmenter), as COCO RLE in original pixels.
CREATE TABLE image_masks (
    batch          VARCHAR NOT NULL,
    image_id       VARCHAR NOT NULL,
    region         INTEGER NOT NULL,  -- the box's number in image_detections
    phrase         VARCHAR NOT NULL,
    x0             DOUBLE NOT NULL,   -- the prompt box
    y0             DOUBLE NOT NULL,
    x1             DOUBLE NOT NULL,
    y1             DOUBLE NOT NULL,
    score          DOUBLE NOT NULL,   -- the detector's
    mask_counts    VARCHAR NOT NULL,  -- compressed COCO RLE counts (pycocotools), as text
    height         INTEGER NOT NULL,  -- the RLE's size: the original image's
    width          INTEGER NOT NULL,
    area           BIGINT NOT NULL,   -- pixels in the mask
    predicted_iou  DOUBLE NOT NULL,   -- the segmenter's own estimate of its best candidate
    model          VARCHAR NOT NULL,  -- the segmenter (path or id)
    weights        VARCHAR NOT NULL,  -- 'pretrained' | 'random-tiny'
    clip_set       VARCHAR,
    created_at     TIMESTAMP WITH TIME ZONE NOT NULL
);

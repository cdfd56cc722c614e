"""The image chain's pure half: "point at X" data from captions and masks, without models.

* :mod:`labeling.image.phrases`: the noun phrases of a caption (spaCy), the detector's prompts;
* :mod:`labeling.image.masks`: boolean masks as COCO RLE, their area, box and IoU;
* :mod:`labeling.image.coco`: a COCO JSON dataset (and results) from images, phrases and masks;
* :mod:`labeling.image.points`: points inside a mask, by a named strategy, seeded;
* :mod:`labeling.image.verify`: does a point, its mask and its box make a verifiable example?

Coordinates follow :data:`models.roles.Box`: x to the right, y down, in pixels
of the original image, pixel ``(row, col)`` covering ``[col, col + 1) x
[row, row + 1)``; a point ``(x, y)`` is in pixel ``(floor(y), floor(x))``.
The models (captioner, Grounding DINO, SAM) are in :mod:`models.vision`.
"""

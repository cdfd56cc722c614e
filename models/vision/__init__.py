"""Image models by role: captioning, open-vocabulary detection, box-prompted segmentation."""

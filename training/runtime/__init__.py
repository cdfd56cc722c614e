"""What every training process needs around the trainer: its process tree's lifetime."""

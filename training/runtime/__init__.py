"""What every training process needs around the trainer.

* :mod:`training.runtime.guard`: the process tree's lifetime (training never outlives its
  launcher);
* :mod:`training.runtime.distributed`: rank and world, device, autocast, seeds, DDP;
* :mod:`training.runtime.checkpoints`: atomic checkpoints and exact resume;
* :mod:`training.runtime.metrics_log`: ``metrics.jsonl``, one row per step;
* :mod:`training.runtime.curves`: the run's curves as one PNG;
* :mod:`training.runtime.pipes_report`: progress and results to Dagster through Pipes.
"""

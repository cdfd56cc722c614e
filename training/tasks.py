"""A task on the spine: what it declares, so that the spine itself names no task.

The spine (batches, warehouse, registry, loop partitions, promotion gate, automation)
is shared. A task (speech today; image pointing, video prediction and audio questions
next) plugs in with one :class:`TaskSpec`: the model family it trains, the table whose
batches it labels, its jobs and loop assets, and the metric that decides promotion with
its direction.

Example:
    >>> spec = TaskSpec(name="demo", family="asr", media_table="audio_clips",
    ...                 label_job="demo_data", loop_jobs={"dpo": "demo_loop"},
    ...                 training_set="demo_training_set", models={"sft": "demo_sft"},
    ...                 evaluation="demo_eval", metric="wer", higher_is_better=False)
    >>> spec.loop_job("dpo"), spec.gate(0.2, 0.3).passed, spec.gate(0.31, 0.3).passed
    ('demo_loop', True, False)
    >>> spec.loop_job("grpo")
    Traceback (most recent call last):
    ...
    ValueError: task 'demo' has no loop for objective 'grpo'; objectives: dpo
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from models.roles import FAMILIES
from training.eval.gate import Verdict, gate


@dataclass(frozen=True)
class TaskSpec:
    """One task's declaration.

    Attributes:
        name: the task's name ("speech").
        family: the model family its loop trains and promotes ("asr", "vlm", "alm").
        media_table: the table whose batches this task labels and trains on.
        label_job: the batch job that labels one train batch for the loop.
        loop_jobs: the loop job per objective (e.g. dpo → "speech_loop").
        training_set: the loop asset that freezes the loop's rows.
        models: the loop's trained-model assets by role ("sft", "preference", "rl").
        evaluation: the loop asset that scores candidate and incumbent.
        metric: the pooled metric the promotion gate compares ("wer").
        higher_is_better: the metric's direction.
        rewards: reward function names (TRL's signature) the task's RL uses.
        label_tables: the per-batch label tables the loop reads; each row records the
            clip set it was made from (`clip_set`), so labels of a batch re-ingested with
            other content since are refused by the training set and relabeled by
            `rlfoundry run`.
        datasets: for loops trained on the question chains' datasets (the TRL backend):
            {chain task: (dataset asset, JSONL file in its report folder)}, e.g.
            {"pointing": ("pointing_dataset", "pointing.jsonl")}; a batch takes part when
            its dataset was materialized.
    """

    name: str
    family: str
    media_table: str
    label_job: str
    loop_jobs: Mapping[str, str]
    training_set: str
    models: Mapping[str, str]
    evaluation: str
    metric: str
    higher_is_better: bool
    rewards: tuple[str, ...] = field(default=())
    label_tables: tuple[str, ...] = field(default=())
    datasets: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"task {self.name!r}: family must be one of {FAMILIES}, "
                             f"got {self.family!r}")

    def loop_job(self, objective: str) -> str:
        """The loop job that trains with `objective`."""
        if objective not in self.loop_jobs:
            raise ValueError(f"task {self.name!r} has no loop for objective {objective!r}; "
                             f"objectives: {', '.join(self.loop_jobs)}")
        return self.loop_jobs[objective]

    def gate(self, candidate: float, incumbent: float, tolerance: float = 0.0) -> Verdict:
        """The shared promotion gate on this task's metric, in its direction."""
        return gate(self.metric, candidate, incumbent, higher_is_better=self.higher_is_better,
                    tolerance=tolerance)

"""A VLM or audio-LM loop's evaluation, reduced to what the promotion gate and a person read.

:func:`training.trl_backend.evaluate.evaluate_with_blind` scores one model on held-out rows,
with the media and without (the blind control). Here each model's result becomes one number
per chain task — pointing: ``hit_rate`` (point in mask), video multiple choice and audio
questions: ``accuracy`` — and the family's ``score``, their mean over the tasks present, which
the gate compares. A candidate is also refused when it loses more than ``max_task_drop`` on
any one task (a VLM that learns pointing but forgets video questions is not better), and the
report says how much of each model's score needs the media (``media_gain`` = media − blind).

Example:
    >>> r = {"media": {"pointing": {"hit_rate": 0.5}, "video_qa": {"accuracy": 0.75}},
    ...      "blind": {"pointing": {"hit_rate": 0.25}, "video_qa": {"accuracy": 0.5}}}
    >>> summary(r)["tasks"], summary(r)["score"], summary(r)["media_gain"]
    ({'pointing': 0.5, 'video_qa': 0.75}, 0.625, 0.25)
    >>> models = {"incumbent": summary(r), "sft": {**summary(r), "score": 0.7,
    ...           "tasks": {"pointing": 0.65, "video_qa": 0.75}}}
    >>> d = decide(models, ["sft"], "incumbent")
    >>> d["passed"], d["candidate"], d["reason"]
    (True, 'sft', 'candidate score 0.700 is better than incumbent score 0.625 (+0.075)')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from training.eval.gate import gate

#: The metric of each chain task that the family's score averages (higher is better).
TASK_METRICS = {"pointing": "hit_rate", "video_qa": "accuracy", "audio_qa": "accuracy"}


def task_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """{task: metric} of one condition's evaluation (a VLM's per-task sections, or an audio
    LM's top-level accuracy)."""
    out = {task: float(result[task][metric]) for task, metric in TASK_METRICS.items()
           if isinstance(result.get(task), Mapping) and result[task].get(metric) is not None}
    if not out and result.get("accuracy") is not None:  # the alm family: one task
        out["audio_qa"] = float(result["accuracy"])
    return out


def summary(result: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One model's ``{"tasks", "score", "blind_tasks", "blind_score", "media_gain",
    "by_bucket"}`` from its ``{"media": ..., "blind": ...}`` evaluation."""
    tasks, blind = task_metrics(result["media"]), task_metrics(result.get("blind") or {})
    score = _mean(tasks.values())
    blind_score = _mean(blind.values()) if blind else None
    return {"tasks": tasks, "score": score, "blind_tasks": blind, "blind_score": blind_score,
            "media_gain": None if blind_score is None or score is None else score - blind_score,
            "reward": result["media"].get("reward"), "by_bucket": buckets(result["media"])}


def buckets(result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"task/bucket": {"n", "accuracy"}}`` of every task that reports curriculum buckets
    (pointing: by target size; video: by the chain's bucket; audio questions: separated,
    touching or overlapping sounds), and the audio questions' types too (``audio_qa/type:…``).

    >>> cell = {"n": 2, "accuracy": 0.5}
    >>> sorted(buckets({"accuracy": 0.5, "by_bucket": {"hard": cell},
    ...                 "by_problem_type": {"numerical": cell}}))
    ['audio_qa/hard', 'audio_qa/type:numerical']
    """
    out: dict[str, dict[str, Any]] = {}
    sections = {task: result[task] for task in TASK_METRICS if isinstance(result.get(task),
                                                                          Mapping)}
    if "by_bucket" in result:
        sections["audio_qa"] = result
    for task, section in sections.items():
        for bucket, cell in (section.get("by_bucket") or {}).items():
            out[f"{task}/{bucket}"] = dict(cell)
        if task == "audio_qa":
            for kind, cell in (section.get("by_problem_type") or {}).items():
                out[f"{task}/type:{kind}"] = dict(cell)
    return out


def decide(models: Mapping[str, Mapping[str, Any]], trained: Sequence[str], incumbent: str, *,
           tolerance: float = 0.0, max_task_drop: float = 0.05) -> dict[str, Any]:
    """The best trained model (highest score among those that lose no task by more than
    ``max_task_drop``) against the incumbent, by the shared gate."""
    base = models[incumbent]
    guards = {label: _task_guards(models[label], base, max_task_drop) for label in trained}
    fit = [label for label in trained if all(g["passed"] for g in guards[label])
           and models[label]["score"] is not None]
    ranked = sorted(fit or trained, key=lambda label: -(models[label]["score"] or 0.0))
    label = ranked[0]
    verdict = gate("score", models[label]["score"] or 0.0, base["score"] or 0.0,
                   higher_is_better=True, tolerance=tolerance)
    failed = [g["reason"] for g in guards[label] if not g["passed"]]
    reason = verdict.reason + (f"; but {'; '.join(failed)}" if failed else "")
    return {"passed": verdict.passed and not failed, "candidate": label,
            "candidate_score": models[label]["score"], "incumbent_score": base["score"],
            "reason": reason, "guards": guards[label],
            "selection": _why(label, trained, guards, models)}


def _task_guards(model: Mapping[str, Any], base: Mapping[str, Any], max_drop: float
                 ) -> list[dict[str, Any]]:
    out = []
    for task, before in base["tasks"].items():
        after = model["tasks"].get(task)
        if after is None:
            out.append({"task": task, "passed": False,
                        "reason": f"{task} was not evaluated for it"})
            continue
        drop = before - after
        out.append({"task": task, "passed": drop <= max_drop, "before": before, "after": after,
                    "reason": f"{task} {TASK_METRICS[task]} {after:.3f} vs {before:.3f} "
                              f"({after - before:+.3f}; at most -{max_drop:g} allowed)"})
    return out


def _why(label: str, trained: Sequence[str], guards, models) -> str:
    if len(trained) == 1:
        return f"{label}: the only trained model"
    refused = [t for t in trained if not all(g["passed"] for g in guards[t])]
    best = models[label]["score"]
    tied = [t for t in trained if t != label and t not in refused
            and models[t]["score"] == best]
    text = (f"{label}: tied with {', '.join(tied)} at {best or 0:.3f}, first in loop order"
            if tied else f"{label}: highest score of {', '.join(trained)}")
    if refused:
        text += f" (refused for losing a task: {', '.join(refused)})"
    return text


def table(models: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown: each model's score and per-task metric, with the media and blind."""
    tasks = sorted({t for m in models.values() for t in m["tasks"]})
    head = ["model", "score", "blind", "media gain", *tasks, *(f"{t} blind" for t in tasks)]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for label, m in models.items():
        cells = [_num(m["score"]), _num(m["blind_score"]), _num(m["media_gain"], sign=True),
                 *(_num(m["tasks"].get(t)) for t in tasks),
                 *(_num(m["blind_tasks"].get(t)) for t in tasks)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bucket_table(models: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown: accuracy per task/bucket (n) for each model; empty when no bucket."""
    keys = sorted({k for m in models.values() for k in m["by_bucket"]})
    if not keys:
        return "no curriculum buckets in the eval rows"
    lines = ["| bucket | n | " + " | ".join(models) + " |",
             "|---|---:|" + "---:|" * len(models)]
    for key in keys:
        n = next(m["by_bucket"][key]["n"] for m in models.values() if key in m["by_bucket"])
        cells = [_num(m["by_bucket"].get(key, {}).get("accuracy")) for m in models.values()]
        lines.append(f"| {key} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _num(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.3f}" if sign else f"{value:.3f}"


def _mean(values) -> float | None:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else None


def plot(models: Mapping[str, Mapping[str, Any]], path) -> Any:
    """Bars: each model's metric per task, with the media (solid) and blind (hatched)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({t for m in models.values() for t in m["tasks"]})
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks) + 1.5, 3.4),
                             squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        labels = list(models)
        xs = range(len(labels))
        media = ax.bar([x - 0.2 for x in xs],
                       [models[m]["tasks"].get(task) or 0 for m in labels], 0.4, label="media")
        blind = ax.bar([x + 0.2 for x in xs],
                       [models[m]["blind_tasks"].get(task) or 0 for m in labels], 0.4,
                       label="blind", hatch="//", alpha=0.6)
        for bars in (media, blind):  # a value on every bar: 0 is not a missing bar
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(list(xs), labels, rotation=20, fontsize=8)
        ax.set_ylim(0, 1.1)  # room for the value over a bar at 1
        ax.set_title(f"{task} {TASK_METRICS[task]}", fontsize=9)
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

"""Training curves as one PNG: loss, rewards, per-bucket reward, policy entropy, KL, in rows
of three panels (at most 880 px wide, as the Dagster UI shows it).

Drawn from the run's metrics log (:mod:`training.runtime.metrics_log`).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from training.runtime.metrics_log import read_metrics

PANELS = (
    ("loss", "loss"),
    ("rewards/accuracies", "reward accuracy"),
    ("rewards/margins", "reward margin"),
    ("reward/mean", "mean reward (GRPO)"),
    ("frac_reward_zero_std", "groups with no reward variance"),
    ("mwer/expected_errors", "expected word errors (MWER)"),
    ("entropy", "policy entropy (nats/token)"),
    ("kl", "KL estimate to reference (nats/token; DPO/MPO: k1 drift, may be < 0)"),
)
BUCKET_PREFIX = "reward/bucket/"
BUCKET_ORDER = ("easy", "medium", "hard")
COLUMNS = 3  # panels a row; more wrap onto the next row
SMOOTH = 5  # per-bucket reward is noisy (a few clips per step): a trailing mean of 5 points


def curve_panels(rows: list[dict]) -> list[tuple[str, str]]:
    """The (metric key, title) panels a run's metrics rows fill: whichever of `PANELS` it
    logged (loss at least), with the per-bucket reward third when it has buckets."""
    panels = [(k, t) for k, t in PANELS if any(k in r for r in rows)] or [("loss", "loss")]
    if bucket_series(rows):
        panels.insert(min(len(panels), 2), (BUCKET_PREFIX, f"reward per bucket ({SMOOTH}-pt mean)"))
    return panels


def curves_figure(metrics_path: str | Path) -> Any:
    """The figure :func:`plot_curves` saves: `curve_panels` in rows of `COLUMNS`, at most
    880 px wide (:mod:`training.eval.figures`), so the Dagster UI shows every panel."""
    from matplotlib.ticker import MaxNLocator

    from training.eval import figures

    rows = [r for r in read_metrics(metrics_path) if "step" in r]
    panels = curve_panels(rows)
    n_rows = -(-len(panels) // COLUMNS)
    fig = figures.new_figure(2.1 * n_rows)
    grid = fig.subplots(n_rows, COLUMNS, squeeze=False).ravel()
    for ax in grid[len(panels):]:
        ax.set_axis_off()
    buckets = bucket_series(rows)
    for ax, (key, title) in zip(grid, panels, strict=False):
        if key == BUCKET_PREFIX:
            for name, points in buckets.items():
                steps, values = zip(*points, strict=True)
                ax.plot(steps, _trailing_mean(values, SMOOTH), label=name)
            ax.legend(fontsize=7)
        else:
            points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker="." if len(points) < 30 else None)
        ax.set_title(textwrap.fill(title, 40), fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps: no 1.2, 1.4, ...
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    return fig


def plot_curves(metrics_path: str | Path, png_path: str | Path) -> Path:
    """Plot whichever of `PANELS` the run logged against its step; returns the PNG path.

    Entropy falling fast is the failure mode to watch (collapse), so it has a
    panel of its own, as does the drift from the reference.
    """
    from training.eval.figures import save_png

    return save_png(curves_figure(metrics_path), png_path)


def bucket_series(rows: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """``{bucket: [(step, mean reward), ...]}`` from rows' ``reward/bucket/<name>`` metrics,
    easy → medium → hard first; a bucket appears from the step its clips were first drawn."""
    series: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key.startswith(BUCKET_PREFIX) and value is not None:
                series.setdefault(key[len(BUCKET_PREFIX):], []).append((row["step"], value))
    rank = {name: i for i, name in enumerate(BUCKET_ORDER)}
    return dict(sorted(series.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def bucket_summary(rows: list[dict], window: int = SMOOTH) -> dict[str, dict[str, float]]:
    """Per bucket: the step its clips first came up, how many steps drew them, and the mean
    reward over its first and last `window` such steps (did the policy get better at it?).

    >>> rows = [{"step": s, "reward/bucket/easy": 0.1 * s} for s in range(1, 11)]
    >>> bucket_summary(rows, window=2)["easy"]
    {'first_step': 1, 'steps': 10, 'reward_first': 0.15, 'reward_last': 0.95}
    """
    out = {}
    for name, points in bucket_series(rows).items():
        values = [v for _, v in points]
        out[name] = {"first_step": points[0][0], "steps": len(points),
                     "reward_first": round(sum(values[:window]) / len(values[:window]), 4),
                     "reward_last": round(sum(values[-window:]) / len(values[-window:]), 4)}
    return out


def _trailing_mean(values: tuple[float, ...], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out

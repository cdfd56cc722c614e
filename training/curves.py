"""Training curves as one PNG: loss, reward accuracy and margin, policy entropy, KL."""

from __future__ import annotations

import json
from pathlib import Path

PANELS = (
    ("loss", "loss"),
    ("rewards/accuracies", "reward accuracy"),
    ("rewards/margins", "reward margin"),
    ("reward/mean", "mean reward (GRPO)"),
    ("frac_reward_zero_std", "groups with no reward variance"),
    ("mwer/expected_errors", "expected word errors (MWER)"),
    ("entropy", "policy entropy (nats/token)"),
    ("kl", "KL to reference (nats/token)"),
)


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a run's `metrics.jsonl` (one per logged step)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(metrics_path: str | Path, png_path: str | Path) -> Path:
    """Plot whichever of `PANELS` the run logged against its step; returns the PNG path.

    Entropy falling fast is the failure mode to watch (collapse), so it has a
    panel of its own, as does the drift from the reference.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    panels = [(k, t) for k, t in PANELS if any(k in r for r in rows)] or [("loss", "loss")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 2.8), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels, strict=True):
        points = [(r["step"], r[key]) for r in rows if r.get(key) is not None and "step" in r]
        if points:
            ax.plot(*zip(*points, strict=True), marker="." if len(points) < 30 else None)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=80)
    plt.close(fig)
    return png_path

"""Preference rows from hypotheses and human judgements, and their export for trainers.

The export is TRL's explicit-prompt preference shape (`prompt`, `chosen`,
`rejected`) plus `audio`, `clip_id` and `pair_id`, as JSONL and as a Hugging
Face `datasets` dataset on disk, so the same pairs feed rlfoundry's Whisper
trainer and any TRL trainer.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

from training.data.pairs import PairConfig, mine_pairs
from training.eval.metrics import error_counts
from training.rewards import reward_components

WHISPER_PROMPT = "<|startoftranscript|><|notimestamps|>"
EXPORT_COLUMNS = ("prompt", "chosen", "rejected", "audio", "clip_id", "pair_id", "source")


def pair_id(clip_id: str, chosen: str, rejected: str) -> str:
    return hashlib.sha256(f"{clip_id}\0{chosen}\0{rejected}".encode()).hexdigest()[:16]


def model_pairs(hypotheses: Sequence[Mapping[str, Any]], config: PairConfig) -> list[dict]:
    """Mined pairs for hypothesis rows sorted by clip (one reference per clip)."""
    rows = []
    for clip_id, group in groupby(hypotheses, key=lambda h: h["clip_id"]):
        hyps = list(group)
        first = hyps[0]
        if not first["reference"]:
            continue
        for p in mine_pairs(first["reference"], hyps, config):
            rows.append({
                "pair_id": pair_id(clip_id, p.chosen, p.rejected), "clip_id": clip_id,
                "audio": first["source_path"], "prompt": WHISPER_PROMPT, "chosen": p.chosen,
                "rejected": p.rejected, "source": "model", "strategy": p.strategy,
                "chosen_wer": p.chosen_wer, "rejected_wer": p.rejected_wer, "margin": p.margin,
                "chosen_kind": p.chosen_kind, "rejected_kind": p.rejected_kind,
                "round": first.get("round"),
            })
    return rows


def hard_negative_pairs(hypotheses: Sequence[Mapping[str, Any]], share: float) -> list[dict]:
    """Reference (chosen) vs the labeling model's greedy transcript (rejected), for the `share`
    of clips where that transcript's WER is highest (and above 0): where the model still errs
    most, it is taught the right answer against its own output.

    Hypothesis rows are those of `asr_hypotheses` joined with the reference (sorted by clip);
    clips without a greedy hypothesis are skipped.

    >>> hyps = [{"clip_id": c, "reference": "a b c d", "kind": "greedy", "text": t,
    ...          "source_path": f"/{c}.wav", "round": 2} for c, t in
    ...         [("x", "a b c d"), ("y", "a b"), ("z", "q r s t")]]
    >>> [(p["clip_id"], p["rejected"], p["source"]) for p in hard_negative_pairs(hyps, 0.3)]
    [('z', 'q r s t', 'hard_negative')]
    """
    if not 0 <= share <= 1:
        raise ValueError(f"hard negative share must be in [0, 1], got {share}")
    greedy = [h for h in hypotheses if h["kind"] == "greedy" and h["reference"]]
    scored = sorted(((error_counts(h["reference"], h["text"]).wer, h["clip_id"], h)
                     for h in greedy), key=lambda t: (-t[0], t[1]))
    take = [(w, h) for w, _, h in scored[: math.ceil(share * len(scored))] if w > 0]
    return [{
        "pair_id": pair_id(h["clip_id"], h["reference"], h["text"]), "clip_id": h["clip_id"],
        "audio": h["source_path"], "prompt": WHISPER_PROMPT, "chosen": h["reference"],
        "rejected": h["text"], "source": "hard_negative", "strategy": "reference_vs_greedy",
        "chosen_wer": 0.0, "rejected_wer": wer, "margin": wer, "chosen_kind": "reference",
        "rejected_kind": "greedy", "round": h.get("round"),
    } for wer, h in take]


def human_pairs(preferences: Iterable[Any], known_clips: Mapping[str, str]) -> list[dict]:
    """Rows for aggregated Label Studio preferences whose clip belongs to this batch."""
    rows = []
    for pref in preferences:
        clip = str(pref.clip_id)
        if clip not in known_clips:
            continue
        rows.append({
            "pair_id": pair_id(clip, pref.chosen, pref.rejected), "clip_id": clip,
            "audio": known_clips[clip], "prompt": WHISPER_PROMPT, "chosen": pref.chosen,
            "rejected": pref.rejected, "source": "human", "annotators": list(pref.annotators),
            "agreement": pref.agreement,
        })
    return rows


def shaped_rewards(hypotheses: Iterable[Mapping[str, Any]]) -> list[dict]:
    """One row of reward components per hypothesis that has a reference."""
    rows = []
    for h in hypotheses:
        if not h["reference"]:
            continue
        parts = reward_components(h["reference"], h["text"], h["duration_s"])
        parts = {k: (v if math.isfinite(v) else None) for k, v in parts.items()}
        rows.append({"clip_id": h["clip_id"], "kind": h["kind"], "rank": h["rank"],
                     "text": h["text"], "avg_logprob": h["avg_logprob"], **parts})
    return rows


def export_pairs(rows: Sequence[Mapping[str, Any]], out_dir: str | Path) -> dict[str, Path]:
    """Write `pairs.jsonl` and a `datasets` folder `pairs_dataset/` into `out_dir`, atomically."""
    from datasets import Dataset

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = [{k: r.get(k) for k in EXPORT_COLUMNS} for r in rows]
    jsonl = out_dir / "pairs.jsonl"
    tmp = jsonl.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    os.replace(tmp, jsonl)
    dataset_dir = out_dir / "pairs_dataset"
    staging = out_dir / ".pairs_dataset.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    columns = {k: [r[k] for r in records] for k in EXPORT_COLUMNS}
    Dataset.from_dict(columns).save_to_disk(str(staging))
    shutil.rmtree(dataset_dir, ignore_errors=True)
    os.replace(staging, dataset_dir)
    return {"jsonl": jsonl, "dataset": dataset_dir}

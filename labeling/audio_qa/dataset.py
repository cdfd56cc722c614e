"""The audio questions dataset: one row per question form, for TRL's GRPOTrainer.

Columns (policy):

* ``prompt`` is conversational (one user turn holding the question, its options, the
  answering hint and the reasoning format: think in ``<think>…</think>``, answer in
  ``<answer>…</answer>``, :mod:`labeling.questions.reasoning`, what
  :func:`training.rewards.answers.answer_format` pays for; the audio-LM trainer inserts the
  audio), ``audio`` the clip's file;
* the answer rewards (:mod:`training.rewards.answers`) read ``answer`` (a letter for
  multiple choice, a label, or a number as text), ``answer_type`` (``choice``, ``number``,
  ``text``), ``options`` (the four options; empty for open forms) and ``tolerance`` (for
  numbers; None otherwise); ``problem_type`` says the same as ``answer_type`` in the words
  of Video-R1 / R1-AQA datasets (``multiple choice``, ``numerical``, ``free-form``);
* provenance: ``regions_source`` is where the regions the answer was computed from came
  from (``manifest``, ``human`` or ``model:<name>``), and ``field_sources`` (JSON) names the
  source of every field: the audio (the ingested file), the prompt (the template of its
  kind), the answer (the timeline of those regions) and the options (the seeded draw);
* ``bucket``: the curriculum bucket (``easy`` / ``medium`` / ``hard``: the sounds the
  question is about are apart by a clear gap, touch, or overlap;
  :mod:`labeling.audio_qa.buckets`), what ``curriculum: easy_to_hard`` orders by; None
  when not given.

Example:
    >>> q = {"question_id": "q1", "clip_id": "c1", "kind": "longest", "form": "choice",
    ...      "subject": None, "question": "Which sound lasts the longest in total?",
    ...      "prompt": "Which sound lasts the longest in total?\\nA. music\\nB. speech\\n...",
    ...      "answer": "B", "answer_text": "speech", "answer_type": "choice", "value": None,
    ...      "tolerance": None, "options": ["music", "speech", "dog", "noise"],
    ...      "regions_source": "manifest", "seed": 0}
    >>> row = dataset_row(q, audio="/d/a.ogg", duration_s=12.5, bucket="hard")
    >>> row["prompt"][0]["role"], row["answer"], row["problem_type"], row["audio"]
    ('user', 'B', 'multiple choice', '/d/a.ogg')
    >>> row["bucket"]
    'hard'
    >>> row["prompt_text"].endswith("inside <answer> </answer> tags, with nothing after them.")
    True
    >>> json.loads(row["field_sources"])["answer"]
    'timeline of manifest regions'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labeling.questions.export import export_rows
from labeling.questions.reasoning import with_reasoning_format

PROBLEM_TYPES = {"choice": "multiple choice", "number": "numerical", "text": "free-form"}
BUCKETS = ("easy", "medium", "hard")
"""The curriculum buckets, easy first (``training.curriculum.ORDER``)."""


def dataset_row(question: Mapping[str, Any], *, audio: str, duration_s: float,
                bucket: str | None = None) -> dict[str, Any]:
    """The dataset row of one ``audio_questions`` row (see the columns above); ``bucket``
    from :func:`labeling.audio_qa.buckets.question_bucket`."""
    if bucket is not None and bucket not in BUCKETS:
        raise ValueError(f"question {question['question_id']}: bucket must be one of "
                         f"{list(BUCKETS)} or None, got {bucket!r}")
    form = question["form"]
    sources = {
        "audio": "audio_clips.source_path",
        "prompt": f"template:{question['kind']}" + (" with options" if form == "choice" else "")
        + ", think/answer format",
        "answer": f"timeline of {question['regions_source']} regions",
        "options": f"seeded distractors (seed {question['seed']})" if form == "choice"
        else None,
    }
    prompt = with_reasoning_format(question["prompt"])
    return {
        "example_id": question["question_id"], "clip_id": question["clip_id"],
        "audio": str(audio), "duration_s": float(duration_s),
        "prompt": [{"role": "user", "content": prompt}],
        "prompt_text": prompt, "question": question["question"],
        "kind": question["kind"], "form": form, "subject": question["subject"],
        "answer": question["answer"], "answer_text": question["answer_text"],
        "answer_type": question["answer_type"],
        "problem_type": PROBLEM_TYPES[question["answer_type"]],
        "options": list(question["options"] or []), "tolerance": question["tolerance"],
        "regions_source": question["regions_source"],
        "field_sources": json.dumps({k: v for k, v in sources.items() if v}),
        "bucket": bucket,
    }


def export_dataset(rows: Sequence[Mapping[str, Any]], out_dir: str | Path) -> dict[str, Path]:
    """Write ``audio_qa.jsonl`` and the ``datasets`` folder ``audio_qa_dataset/`` into
    ``out_dir``, each atomically (a temp name, then a rename)."""
    return export_rows(rows, out_dir, "audio_qa", _features())


def _features():
    from datasets import Features, List, Value

    text = Value("string")
    return Features({
        "example_id": text, "clip_id": text, "audio": text, "duration_s": Value("float64"),
        "prompt": List({"role": text, "content": text}), "prompt_text": text, "question": text,
        "kind": text, "form": text, "subject": text, "answer": text, "answer_text": text,
        "answer_type": text, "problem_type": text, "options": List(text),
        "tolerance": Value("float64"), "regions_source": text, "field_sources": text,
        "bucket": text,
    })

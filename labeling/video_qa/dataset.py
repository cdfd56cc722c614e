"""The video questions dataset: one row per question form, for TRL's GRPOTrainer.

Columns (policy):

* ``prompt`` is conversational (one user turn: the note that the images are the first part
  of a video, the question, the options, the answering hint and the reasoning format: think
  in ``<think>…</think>``, answer in ``<answer>…</answer>``,
  :mod:`labeling.questions.reasoning`, what :func:`training.rewards.answers.answer_format`
  pays for); ``images`` are the context frames' files, in order (the trainer inserts them:
  a video is a list of frames);
* the answer rewards (:mod:`training.rewards.answers`) read ``answer`` (the letter for
  multiple choice; the truth's words for the open form), ``answer_type`` (``choice`` or
  ``text``) and ``options`` (four, or empty); ``problem_type`` says it the way Video-R1
  datasets do (``multiple choice``, ``free-form``); ``truth_description`` is what the open
  form's answer is scored against by overlap (ROUGE);
* curriculum: ``bucket`` (easy / medium / hard, as :mod:`training.curriculum` reads it),
  ``curriculum_bucket`` (choice/obvious ... open/subtle) and ``curriculum_order``;
* provenance and QC of every field: ``question_source`` (``model:<id>`` or ``template``),
  ``context_source`` and ``truth_source`` (``human``, ``manifest`` or ``model:<id>``),
  ``weights`` (``random-tiny`` when a model behind the row is a tiny random build),
  ``answerable_blind`` and ``blind_margin`` (the blind control), ``support`` (the truth's
  support of the answer), ``qc`` (``unreviewed`` until human validation), and
  ``field_sources`` (JSON naming the source of each field).

Which rows enter (:func:`keep_row`): a question answerable blind is left out unless asked
for, and so is one whose ``qc`` is not in the kept states (by the dataset's ``human_qc``
setting, :func:`labeling.video_qa.validation.kept_states`: ``unreviewed`` and ``accepted``
before anyone has validated the batch, ``accepted`` alone once anyone has). Left out is not
lost: the asset records each in the quarantine with its reason.

Example:
    >>> q = {"question_id": "q1", "group_id": "g1", "video_id": "v1", "kind": "rest_of_video",
    ...      "form": "choice", "question": "Which of these ...?", "prompt": "The images ...",
    ...      "answer": "C", "answer_text": "It stops.", "answer_type": "choice",
    ...      "options": ["It rolls.", "It jumps.", "It stops.", "It spins."],
    ...      "question_source": "template", "context_source": "manifest",
    ...      "truth_source": "manifest", "truth_description": "It stops.", "support": 1.0,
    ...      "answerable_blind": False, "blind_margin": -0.4, "curriculum_bucket": "choice/subtle",
    ...      "curriculum_order": 1, "bucket": "medium", "qc": "unreviewed"}
    >>> row = dataset_row(q, video="/d/a.mp4", frames=["/f/0.jpg", "/f/1.jpg"],
    ...                   weights="pretrained")
    >>> row["prompt"][0]["role"], row["images"], row["problem_type"], row["answer"]
    ('user', ['/f/0.jpg', '/f/1.jpg'], 'multiple choice', 'C')
    >>> row["prompt_text"].splitlines()[-1].startswith("Think it through inside <think>")
    True
    >>> json.loads(row["field_sources"])["answer"]
    'truth description (manifest)'
    >>> keep_row(q, keep_qc=("accepted",), include_blind=False)
    'qc_unreviewed'
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from labeling.questions.export import export_rows
from labeling.questions.reasoning import with_reasoning_format

PROBLEM_TYPES = {"choice": "multiple choice", "text": "free-form"}
PASSED = ("question_source", "context_source", "truth_source", "truth_description", "support",
          "answerable_blind", "blind_margin", "curriculum_bucket", "curriculum_order", "bucket",
          "qc")


def keep_row(question: Mapping[str, Any], *, keep_qc: Collection[str], include_blind: bool
             ) -> str | None:
    """None when the question enters the dataset, else why not (``answerable_blind``,
    ``qc_<state>``)."""
    if question["qc"] not in keep_qc:
        return f"qc_{question['qc']}"
    if question["answerable_blind"] and not include_blind:
        return "answerable_blind"
    return None


def dataset_row(question: Mapping[str, Any], *, video: str, frames: Sequence[str],
                weights: str) -> dict[str, Any]:
    """The dataset row of one ``video_questions`` row (see the columns above)."""
    choice = question["answer_type"] == "choice"
    sources = {
        "images": "video_segments.context_paths (frames before the cut)",
        "prompt": f"{question['question_source']} question"
        + (" with shuffled options" if choice else ", open form") + ", think/answer format",
        "answer": f"truth description ({question['truth_source']})",
        "options": f"{question['question_source']} distractors" if choice else None,
        "qc": "human validation" if question["qc"] != "unreviewed" else None,
    }
    prompt = with_reasoning_format(question["prompt"])
    return {
        "example_id": question["question_id"], "group_id": question["group_id"],
        "video_id": question["video_id"], "video": str(video), "images": list(frames),
        "prompt": [{"role": "user", "content": prompt}],
        "prompt_text": prompt, "question": question["question"],
        "kind": question["kind"], "form": question["form"], "answer": question["answer"],
        "answer_text": question["answer_text"], "answer_type": question["answer_type"],
        "problem_type": PROBLEM_TYPES[question["answer_type"]],
        "options": list(question["options"] or []),
        **{name: question[name] for name in PASSED}, "weights": weights,
        "field_sources": json.dumps({k: v for k, v in sources.items() if v}),
    }


def export_dataset(rows: Sequence[Mapping[str, Any]], out_dir: str | Path) -> dict[str, Path]:
    """Write ``video_qa.jsonl`` and the ``datasets`` folder ``video_qa_dataset/`` into
    ``out_dir``, each atomically (a temp name, then a rename)."""
    return export_rows(rows, out_dir, "video_qa", _features())


def _features():
    from datasets import Features, Image, List, Value

    text, number = Value("string"), Value("float64")
    return Features({
        "example_id": text, "group_id": text, "video_id": text, "video": text,
        "images": List(Image()), "prompt": List({"role": text, "content": text}),
        "prompt_text": text, "question": text, "kind": text, "form": text, "answer": text,
        "answer_text": text, "answer_type": text, "problem_type": text, "options": List(text),
        "question_source": text, "context_source": text, "truth_source": text,
        "truth_description": text, "support": number, "answerable_blind": Value("bool"),
        "blind_margin": number, "curriculum_bucket": text, "curriculum_order": Value("int64"),
        "bucket": text, "qc": text, "weights": text, "field_sources": text,
    })

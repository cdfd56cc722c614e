"""The video questions chain's rows: descriptions in, questions (both forms) out, with the
blind control and curriculum bucket of each, as the ``video_questions`` table stores them.

Policy:

* a video is asked about only when it has both descriptions (context and truth); one without
  is quarantined (``no_description``, naming the part missing);
* templates (``template``): ``fallback`` builds the template question of a video whose LLM
  questions were all refused (or not asked), ``always`` of every video, ``off`` never; only
  from a truth description of a source in ``template_sources`` (given ones by default: a
  model's description is not a truth to build answers on unchecked), with distractors from
  the other videos' descriptions of those sources;
* the multiple-choice forms of the batch's questions are shuffled together, so the right
  letters are balanced over the batch (:func:`labeling.questions.choices.multiple_choice`);
* each row has ``qc = 'unreviewed'``: human validation (a yes/no per question in Label
  Studio, keyed by ``question_id``) sets ``accepted``, ``rejected`` or ``disputed``; the
  dataset keeps the states its config allows.

Example (given descriptions of three videos, the template alone; the blind control, here made
up, picks the first question's right letter with a margin of 0.3 and is not run on the others):
    >>> described = {f"v{i}": {"source_path": f"/d/{i}.mp4",
    ...     "context": (f"The ball {i} rolls left.", "manifest"),
    ...     "truth": (f"The ball {i} stops by the wall number {i}.", "manifest")}
    ...     for i in range(3)}
    >>> inputs, missing = video_inputs(described)
    >>> drafts = template_drafts(inputs, [], mode="fallback", seed=0)
    >>> choices, skipped = shuffle_choices(drafts, seed=0)
    >>> sorted(mc.answer for mc in choices.values()), skipped
    (['B', 'C', 'D'], [])
    >>> from labeling.video_qa.blind import BlindResult
    >>> blind = {0: BlindResult(choices[0].answer, margin=0.3, method="letter_probabilities")}
    >>> rows = question_rows(drafts, choices, blind, inputs, seed=0)
    >>> [(r["form"], r["answerable_blind"], r["curriculum_bucket"], r["qc"]) for r in rows]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('choice', True, 'choice/obvious', 'unreviewed'), ('open', True, 'open/obvious', 'unreviewed'),
     ('choice', None, 'choice/subtle', 'unreviewed'), ('open', None, 'open/subtle', 'unreviewed'),
     ('choice', None, 'choice/subtle', 'unreviewed'), ('open', None, 'open/subtle', 'unreviewed')]
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

from labeling.questions.choices import MultipleChoice, multiple_choice
from labeling.video_qa.blind import BlindResult
from labeling.video_qa.curriculum import curriculum
from labeling.video_qa.descriptions import GIVEN, PARTS
from labeling.video_qa.questions import Draft, template_question

Row = dict[str, Any]
FRAMES_NOTE = "The images are frames of the first part of a video, in order."
QC_STATES = ("unreviewed", "accepted", "rejected", "disputed")
"""A question's human validation status (the statuses of :mod:`labeling.qc.question_checks`:
a yes/no per question in Label Studio); every question starts ``unreviewed``."""
TemplateMode = Literal["fallback", "always", "off"]


def described_videos(description_rows: Sequence[Mapping[str, Any]],
                     paths: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Per video id: its ``source_path`` and each described part as ``(text, source)``."""
    out: dict[str, dict[str, Any]] = {v: {"source_path": p} for v, p in paths.items()}
    for r in description_rows:
        out.setdefault(r["video_id"], {"source_path": paths.get(r["video_id"])})[r["part"]] = (
            r["description"], r["source"])
    return out


def video_inputs(described: Mapping[str, Mapping[str, Any]]
                 ) -> tuple[list[dict[str, Any]], list[Row]]:
    """The videos with both descriptions (``video_id``, ``source_path``, ``context``,
    ``truth`` and their sources), in id order; a quarantine row per other video."""
    inputs, failures = [], []
    for video_id, d in sorted(described.items()):
        missing = [part for part in PARTS if part not in d]
        if missing:
            failures.append({"source_path": d["source_path"], "reason": "no_description",
                             "detail": f"no {' and no '.join(missing)} description (see the "
                                       "video_descriptions quarantine): no question asked"})
            continue
        inputs.append({"video_id": video_id, "source_path": d["source_path"],
                       "context": d["context"][0], "context_source": d["context"][1],
                       "truth": d["truth"][0], "truth_source": d["truth"][1]})
    return inputs, failures


def template_drafts(
    inputs: Sequence[Mapping[str, Any]], llm_drafts: Sequence[Draft], *, mode: TemplateMode,
    seed: Any, template_sources: Collection[str] = GIVEN, margin: float = 0.1,
) -> list[Draft]:
    """The template questions ``mode`` asks for (see the policy)."""
    if mode == "off":
        return []
    asked = {d.video_id for d in llm_drafts}
    out = []
    for v in inputs:
        if v["truth_source"] not in template_sources or (mode == "fallback"
                                                         and v["video_id"] in asked):
            continue
        others = [o[part] for o in inputs if o["video_id"] != v["video_id"]
                  for part in ("truth", "context") if o[f"{part}_source"] in template_sources]
        out.append(template_question(v["video_id"], v["truth"], v["context"], others,
                                     seed=seed, margin=margin))
    return out


def shuffle_choices(drafts: Sequence[Draft], *, seed: Any
                    ) -> tuple[dict[int, MultipleChoice], list[tuple[int, str]]]:
    """{draft index: its multiple-choice form} with the right letters balanced over the
    batch, and ``(draft index, detail)`` per draft too short of distractors for one."""
    kept = [i for i, d in enumerate(drafts) if len(d.distractors) >= 3]
    choices, _ = multiple_choice([drafts[i].as_question() for i in kept], seed=seed)
    short = [(i, f"{len(d.distractors)} distractor(s) usable for {d.kind!r}; 3 needed: no "
                 "multiple-choice form (the open form is kept)")
             for i, d in enumerate(drafts) if len(d.distractors) < 3]
    return dict(zip(kept, choices, strict=True)), short


def question_rows(
    drafts: Sequence[Draft], choices: Mapping[int, MultipleChoice],
    blind: Mapping[int, BlindResult], inputs: Sequence[Mapping[str, Any]], *, seed: int,
    forms: Sequence[str] = ("choice", "open"), obvious_margin: float = -0.15,
) -> list[Row]:
    """The ``video_questions`` rows: per draft, its choice form (when it has one) and its
    open form, each with the group's blind control and its own curriculum bucket."""
    by_video = {v["video_id"]: v for v in inputs}
    rows = []
    for i, d in enumerate(drafts):
        v, mc, result = by_video[d.video_id], choices.get(i), blind.get(i)
        group = _hash(d.video_id, d.kind, d.question, d.answer)
        base = {
            "group_id": group, "video_id": d.video_id, "kind": d.kind,
            "question_source": d.source, "context_source": v["context_source"],
            "truth_source": v["truth_source"], "truth_description": v["truth"],
            "support": d.support, "distractor_support": d.distractor_support,
            "answerable_blind": result.answered(mc.answer) if result and mc else None,
            "blind_pick": result.pick if result else None,
            "blind_probabilities": list(result.probabilities) if result and
            result.probabilities else None,
            "blind_margin": result.margin if result else None,
            "blind_method": result.method if result else None,
            "qc": QC_STATES[0], "seed": seed,
        }
        made = []
        if mc is not None and "choice" in forms:
            made.append({"form": "choice", "question": mc.question,
                         "prompt": f"{FRAMES_NOTE}\n{mc.prompt}", "answer": mc.answer,
                         "answer_text": mc.answer_text, "answer_type": "choice",
                         "options": list(mc.options)})
        if "open" in forms:
            made.append({"form": "open", "question": d.open_question,
                         "prompt": f"{FRAMES_NOTE}\n{d.open_question}", "answer": d.answer,
                         "answer_text": d.answer, "answer_type": "text", "options": []})
        for form in made:
            bucket = curriculum(form["form"], base["blind_margin"], obvious_margin)
            rows.append({"question_id": _hash(group, form["form"]), **base, **form,
                         "curriculum_bucket": bucket.name, "curriculum_order": bucket.order,
                         "bucket": bucket.spine})
    return rows


def weights_of(row: Mapping[str, Any], description_weights: Mapping[tuple[str, str], str | None],
               llm_weights: str | None) -> str:
    """``random-tiny`` when a model behind the row (the VLM of a description it rests on, the
    LLM that wrote it or ran its blind control) is a tiny random build; else ``pretrained``
    when a model is behind it at all; else ``none`` (given descriptions, a template, no
    blind control).

    >>> row = {"video_id": "v", "question_source": "template", "blind_method": None}
    >>> weights_of(row, {("v", "truth"): None}, "random-tiny")
    'none'
    >>> weights_of({**row, "blind_method": "letter_probabilities"}, {}, "random-tiny")
    'random-tiny'
    """
    kinds = {description_weights.get((row["video_id"], part)) for part in PARTS}
    if row["question_source"].startswith("model:") or row["blind_method"]:
        kinds.add(llm_weights)
    kinds.discard(None)
    return "random-tiny" if "random-tiny" in kinds else ("pretrained" if kinds else "none")


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]

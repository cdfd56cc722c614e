"""Questions about what happens next in a video: written by the ``text_llm`` role from the two
descriptions and checked in code, or built from a given truth description by a template.

LLM questions (kind ``next_event``, source ``model:<id>``):

* the LLM is given what happens before the cut and after it, and asked for one question in a
  JSON schema (``{"question", "options": [4], "answer": letter}``) about the rest of the
  video; its output is parsed and checked by :func:`labeling.questions.validate.parse_choice`
  (four distinct options, one answer among them, no option repeating the question) and by
  :func:`labeling.video_qa.support.check_support` (the truth supports the answer and no
  distractor as well; the question does not say the answer). Every refusal is a quarantine
  row with its reason code and the model's whole output;
* ``per_video`` questions are asked in rounds; each round tells the LLM the questions it
  already wrote for the video, and one it repeats is refused (``duplicate_question``). Use a
  temperature above 0 for more than one: greedy decoding repeats a refused answer.

Template questions (kind ``rest_of_video``, source ``template``), from a truth description a
person or the manifest gave (a random LLM writes nothing usable, so offline these are the
sample's real questions):

* the question: "Which of these describes what happens in the rest of the video?"; the
  answer: the truth description itself;
* distractors: the video's own context description (what happened *before*: the natural
  wrong guess), then the other videos' descriptions in the batch (drawn at random), each
  kept only when the truth does not support it (support below ``1 - margin``) and distinct;
  fewer than three: no multiple-choice form (``too_few_options``), the open form is kept.

Every question keeps an open-ended form (``open_question``): the LLM's question with "Answer
in one sentence.", or "What happens in the rest of the video? ...".

Example (the template on two videos' given descriptions):
    >>> truth = "The red circle keeps moving down and to the right."
    >>> draft = template_question("v1", truth, "The red circle moves up and bounces off the top.",
    ...     ["The blue square keeps moving left.", "The blue square moves right.",
    ...      "The red circle moves down and to the right."], seed=0)
    >>> draft.answer == truth, draft.source, len(draft.distractors)
    (True, 'template', 3)
    >>> "The red circle moves down and to the right." in draft.distractors  # the truth says it
    False
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labeling.questions.choices import normalize_text, pick_distractors, rng_for
from labeling.questions.templates import Question
from labeling.questions.validate import parse_choice
from labeling.video_qa.support import check_support, support
from models.roles import Message

Row = dict[str, Any]
LLM_KIND, TEMPLATE_KIND = "next_event", "rest_of_video"
TEMPLATE_QUESTION = "Which of these describes what happens in the rest of the video?"
TEMPLATE_OPEN = "What happens in the rest of the video? Describe it in one or two sentences."
OPEN_HINT = "Answer in one sentence."
SYSTEM = ("You write multiple-choice questions that test whether someone watching the start "
          "of a video can predict what happens next.")
SCHEMA = ('{"question": "...", "options": ["...", "...", "...", "..."], '
          '"answer": "<the letter of the correct option>"}')
MAX_DETAIL = 2000


@dataclass(frozen=True)
class QuestionSettings:
    """How questions are asked of the LLM and checked."""

    per_video: int = 1
    """Questions the LLM is asked for per video (in rounds)."""
    max_new_tokens: int = 256
    temperature: float = 0.0
    min_support: float = 0.5
    """The least share of the answer's content words the truth must hold."""
    margin: float = 0.1
    """How far below the answer's support every distractor's must be."""


@dataclass(frozen=True)
class Draft:
    """One accepted question before its options are shuffled: the right option and three
    wrong ones (fewer for a template short of candidates), and where it came from."""

    video_id: str
    kind: str
    question: str
    open_question: str
    answer: str
    distractors: tuple[str, ...]
    source: str
    """``model:<id>`` or ``template``."""
    support: float
    """The answer's support by the truth description."""
    distractor_support: float | None = None
    """The highest support of a distractor (None: no distractor)."""
    raw: str | None = field(default=None, compare=False)
    """The model's text it was read from."""

    def as_question(self) -> Question:
        """As :mod:`labeling.questions.choices` shuffles it."""
        return Question(self.kind, self.question, self.answer, distractors=self.distractors,
                        subject=self.video_id)


def question_prompt(context: str, truth: str, previous: Sequence[str] = ()) -> list[Message]:
    """The chat asking the LLM for one question (see the module's policy)."""
    avoid = f"Ask something other than: {' | '.join(previous)}\n" if previous else ""
    user = (
        "A video is cut in two; the person answering sees only the first part.\n"
        f"First part: {context}\n"
        f"What happens in the rest (only you know this): {truth}\n"
        "Write one multiple-choice question about what happens in the rest of the video. Give "
        "exactly four options: the correct one, which the rest of the video shows, and three "
        "plausible wrong ones. Do not give the answer away in the question.\n"
        f"{avoid}Reply with JSON only: {SCHEMA}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def read_question(text: str, *, video_id: str, truth: str, source: str,
                  settings: QuestionSettings = QuestionSettings()) -> Draft | tuple[str, str]:
    """The LLM's question as a :class:`Draft`, or ``(reason, detail)`` when it is refused.

    >>> out = ('{"question": "Where does the ball go next?", "options": ["up", "down", '
    ...        '"left", "right"], "answer": "B"}')
    >>> read_question(out, video_id="v", truth="The ball falls down.", source="model:x").answer
    'down'
    >>> read_question(out, video_id="v", truth="The ball stops.", source="model:x")[0]
    'answer_unsupported'
    """
    checked = parse_choice(text)
    if not checked.ok:
        return checked.reason, checked.detail
    mc = checked.choice
    distractors = tuple(o for i, o in enumerate(mc.options) if i != mc.index)
    found = check_support(mc.question, mc.answer_text, distractors, truth,
                          min_support=settings.min_support, margin=settings.margin)
    if not found.ok:
        return found.reason, found.detail
    return Draft(video_id, LLM_KIND, mc.question, f"{mc.question} {OPEN_HINT}", mc.answer_text,
                 distractors, source, found.answer, max(found.distractors), raw=text)


def llm_questions(
    llm: Any, videos: Sequence[Mapping[str, Any]], *,
    settings: QuestionSettings = QuestionSettings(),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Draft], list[Row]]:
    """The LLM's accepted questions and a quarantine row per refused output.

    ``videos`` carry ``video_id``, ``source_path``, ``context`` and ``truth`` (descriptions).
    """
    drafts: list[Draft] = []
    failures: list[Row] = []
    asked: dict[str, list[str]] = {v["video_id"]: [] for v in videos}
    source = f"model:{llm.name}"
    for round_ in range(settings.per_video):
        prompts = [question_prompt(v["context"], v["truth"], asked[v["video_id"]])
                   for v in videos]
        texts = llm.generate(prompts, max_new_tokens=settings.max_new_tokens,
                             temperature=settings.temperature)
        for video, text in zip(videos, texts, strict=True):
            read = read_question(text, video_id=video["video_id"], truth=video["truth"],
                                 source=source, settings=settings)
            if isinstance(read, Draft) and normalize_text(read.question) in {
                    normalize_text(q) for q in asked[video["video_id"]]}:
                read = ("duplicate_question", f"question {read.question!r} was already asked "
                                              "of this video")
            if isinstance(read, Draft):
                drafts.append(read)
                asked[video["video_id"]].append(read.question)
            else:
                failures.append(_refused(video, round_, read, text))
        if progress is not None:
            progress(round_ + 1, settings.per_video)
    return drafts, failures


def template_question(
    video_id: str, truth: str, context: str | None, others: Sequence[str], *, seed: Any,
    margin: float = 0.1,
) -> Draft:
    """The template question of one video (see the module's policy); ``others`` are the other
    videos' descriptions in the batch."""
    def usable(candidate: str) -> bool:
        return bool(normalize_text(candidate)) and support(candidate, truth) < 1.0 - margin

    own = [context] if context and usable(context) else []
    distractors = pick_distractors(truth, own, [o for o in others if usable(o)],
                                   rng=rng_for(seed, video_id, TEMPLATE_KIND))
    supports = [support(d, truth) for d in distractors]
    return Draft(video_id, TEMPLATE_KIND, TEMPLATE_QUESTION, TEMPLATE_OPEN, truth, distractors,
                 "template", round(support(truth, truth), 4),
                 round(max(supports), 4) if supports else None)


def _refused(video: Mapping[str, Any], round_: int, read: tuple[str, str], text: str) -> Row:
    reason, detail = read
    said = text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"
    return {"source_path": video["source_path"], "reason": reason,
            "detail": f"question {round_ + 1}: {detail}; the model wrote: {said!r}"}

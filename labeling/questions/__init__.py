"""Questions with verifiable answers, shared by the chains that ask them (audio, video).

* :mod:`labeling.questions.templates`: a question (open-ended form, its answer, its tolerance)
  and a skipped one (why it was not asked), rendered from named templates;
* :mod:`labeling.questions.guards`: ambiguity guards: the top two of a comparison must be
  apart by a margin;
* :mod:`labeling.questions.choices`: multiple choice: distractors (labels or numbers), four
  distinct options, answer letters balanced over a batch by seeded shuffling;
* :mod:`labeling.questions.validate`: a multiple-choice question as a language model emits it
  (JSON, in a code fence or in prose), checked; every failure a reason code, never an
  exception.

Chain-specific questions live with their chain (:mod:`labeling.audio_qa.questions`).
"""

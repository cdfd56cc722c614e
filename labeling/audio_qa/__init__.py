"""The audio questions chain's pure half: sound regions → durations → temporal questions.

* :mod:`labeling.audio_qa.regions`: a labelled sound region with its source (manifest,
  human, or a model), validation against the clip, merging per class, and class-wise IoU
  between two annotations (second-review agreement);
* :mod:`labeling.audio_qa.durations`: per clip and class: total time, first start, last end,
  number of occurrences; overlaps between classes; the most classes sounding at once;
* :mod:`labeling.audio_qa.questions`: templated temporal questions with verifiable answers
  (open-ended and multiple choice), skipped with a reason where the answer is ambiguous.

The models (silero-vad for speech, a tagger for other sounds) are in :mod:`models`; shared
question machinery in :mod:`labeling.questions`.
"""

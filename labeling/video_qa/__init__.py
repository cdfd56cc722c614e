"""The video questions chain's pure half: a video cut at 70 % → descriptions of both parts →
multiple-choice questions about what happens next → blind control → curriculum buckets.

* :mod:`labeling.video_qa.segments`: decode (PyAV), standard frame rate and size, the cut
  exact to a frame: frames before it are the model's input, frames after it the truth;
* :mod:`labeling.video_qa.descriptions`: each part in words, given (human, manifest) or
  written by the ``vlm`` role from the part's frames;
* :mod:`labeling.video_qa.questions`: questions written by the ``text_llm`` role, parsed and
  checked in code, or built by a template from a given truth description;
* :mod:`labeling.video_qa.support`: word-overlap support of an option by the truth;
* :mod:`labeling.video_qa.blind`: each question put to the text LLM without the video;
* :mod:`labeling.video_qa.curriculum`: multiple choice before open, obvious before subtle;
* :mod:`labeling.video_qa.chain`: the ``video_questions`` rows;
* :mod:`labeling.video_qa.dataset`: TRL GRPO rows, JSONL and a ``datasets`` folder.

Shared question machinery (options, balanced letters, the JSON validator) is in
:mod:`labeling.questions`; the models in :mod:`models`.
"""

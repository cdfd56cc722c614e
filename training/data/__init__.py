"""What the trainers train on, built from labeled data.

* :mod:`training.data.pairs`: preference pairs mined from N-best hypotheses by WER;
* :mod:`training.data.preference_data`: preference rows and their export for trainers;
* :mod:`training.data.training_set`: the snapshot of rows one loop run trains and evaluates on.

Whisper's own loader of these rows (features, batches) is :mod:`training.whisper.data`.
"""

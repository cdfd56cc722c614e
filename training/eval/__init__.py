"""Evaluation: error rates, reports, the promotion rule and plots.

* :mod:`training.eval.metrics`: normalisation and WER/CER counts, the one place they are computed;
* :mod:`training.eval.report`: scores per tag group, as tables and a PNG chart;
* :mod:`training.eval.evaluate`: transcribe an eval set with a model and score it;
* :mod:`training.eval.cache`: a checkpoint's greedy transcripts, kept so it is decoded once;
* :mod:`training.eval.promotion`: is a tuned model better than the one it would replace?
* :mod:`training.eval.text_table`: the plain-text table formatter.
* :mod:`training.eval.figures`: plot sizes that the Dagster UI shows whole (at most 880 px
  wide, panels in rows).
"""

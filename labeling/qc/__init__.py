"""Human QC through Label Studio, as pure code: tasks out, votes in, agreement, verdicts.

* :mod:`labeling.qc.pairwise`: the "which transcript is better" labeling
  config, tasks, one vote per annotator, majority per pair.
* :mod:`labeling.qc.export`: reading Label Studio's JSON export (a file or the API's).
* :mod:`labeling.qc.review`: which tasks go to a second annotator.
* :mod:`labeling.qc.agreement`: percent agreement, Cohen's kappa, disagreements.
* :mod:`labeling.qc.tasks`: a batch's mined pairs as tasks with the model's pick predicted.
* :mod:`labeling.qc.verdicts`: a batch's annotated tasks as verdict rows, merged into pairs.
* :mod:`labeling.qc.points`: the image chain's verified points as yes/no tasks ("is the point
  on X?"), the point pre-drawn in a contrasting colour, the mask as a brush region.
* :mod:`labeling.qc.point_verdicts`: their answers as verdicts per point, agreement, and the
  points the pointing dataset keeps.
* :mod:`labeling.qc.regions`: the audio chain's clips as region-marking tasks (Audio + Labels),
  the manifest's or detector's regions pre-drawn.
* :mod:`labeling.qc.region_verdicts`: what people marked, agreement by class-wise IoU over time,
  each clip's accepted regions (the chain's ``human`` source).
* :mod:`labeling.qc.question_checks`: any chain's questions as yes/no validation tasks (video,
  audio or image), their statuses and agreement.

The HTTP side is :class:`resources.label_studio.LabelStudio`; the assets are
``assets/qc.py`` (speech), ``assets/image/qc.py`` (points), ``assets/audio_qa/qc.py``
(regions) and the helpers of ``assets/question_qc.py`` (questions), which
``assets/video_qa/qc.py`` calls for the video chain's questions.
"""

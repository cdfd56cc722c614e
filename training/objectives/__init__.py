"""Training objectives on log-probabilities, pure torch, each tested equal to TRL 1.16's own code.

* :mod:`training.objectives.losses`: SFT, DPO (sigmoid) and MPO on per-sequence log-probs;
* :mod:`training.objectives.advantages`: GRPO's group-relative advantages;
* :mod:`training.objectives.grpo`: GRPO's clipped objective on per-token log-probs;
* :mod:`training.objectives.mwer`: minimum word error rate on an N-best list.
"""

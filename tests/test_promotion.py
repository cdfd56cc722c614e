"""The promotion rule: a candidate worse than the incumbent on the eval set never passes."""

import pytest

from training.eval.promotion import comparison_table, decide, plot_comparison
from training.eval.report import grouped_scores

REFS = [("the cat sat on the mat", {"accent": "us"}), ("good morning to you", {"accent": "gb"})]


def report(*hyps):
    return grouped_scores([{"reference": r, "hypothesis": h, "tags": t}
                           for (r, t), h in zip(REFS, hyps, strict=True)], ["accent"])


def test_worse_candidate_fails_and_better_or_equal_passes():
    incumbent = report("the cat sat on a mat", "good morning to you")   # 1 error
    worse = report("the cat sat on a mat", "good morning")              # 3 errors
    better = report("the cat sat on the mat", "good morning to you")    # 0 errors
    assert not decide(worse, incumbent).passed
    assert decide(better, incumbent).passed
    assert decide(incumbent, incumbent).passed  # a tie is not worse
    d = decide(worse, incumbent)
    assert d.wer_delta == pytest.approx(2 / 10)
    assert "worse than incumbent" in d.reason


def test_tolerance_can_allow_a_small_loss_or_demand_a_gain():
    incumbent = report("the cat sat on a mat", "good morning to you")
    worse = report("the cat sat on a mat", "good morning")
    assert decide(worse, incumbent, max_wer_increase=0.25).passed
    assert not decide(incumbent, incumbent, max_wer_increase=-0.01).passed


def test_deletions_are_measured_so_emitting_less_is_visible():
    incumbent = report("the cat sat on the mat", "good morning to you")
    shorter = report("the cat sat", "good morning to you")
    d = decide(shorter, incumbent)
    assert d.deletion_rate_delta == pytest.approx(3 / 10)


def test_reports_on_different_eval_sets_are_not_comparable():
    one = grouped_scores([{"reference": "a b", "hypothesis": "a b", "tags": {}}])
    with pytest.raises(ValueError, match="different eval sets"):
        decide(one, report("x", "y"))


def test_comparison_table_has_one_column_per_model_and_the_change(tmp_path):
    reports = {"baseline": report("the cat sat on a mat", "good morning"),
               "dpo-1": report("the cat sat on the mat", "good morning to you")}
    table = comparison_table(reports)
    assert "baseline WER" in table.splitlines()[0] and "Δ dpo-1" in table.splitlines()[0]
    overall = next(line for line in table.splitlines() if line.startswith("overall"))
    assert overall.split()[-3:] == ["30.0", "0.0", "-30.0"]
    md = comparison_table(reports, markdown=True)
    assert "|accent|gb|1|50.0|0.0|-50.0|" in md
    png = plot_comparison(reports, tmp_path / "c.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def _trained(warehouse, registry, asset, model_id, checkpoint, base, loop="asr-l1"):
    registry.record("asr", model_id=model_id, stage=model_id.split("-")[0],
                    checkpoint=str(checkpoint), base_model=str(base), train_batches=["b"],
                    config={})
    warehouse.write_output(asset, loop, {"model_id": model_id, "checkpoint": str(checkpoint),
                                         "base_model": str(base)})


def test_every_model_a_loop_trained_is_evaluated_and_competes(warehouse, registry, tmp_path):
    """SFT then DPO in one loop: both are shown, both compete (candidate 'best'), unless one
    stage is named."""
    from assets.speech.contenders import contenders as _contenders
    from resources.model_hub import ModelHub

    hub = ModelHub(baseline_asr=str(tmp_path))
    base, sft, dpo = str(tmp_path), tmp_path / "sft", tmp_path / "dpo"
    _trained(warehouse, registry, "whisper_sft_model", "sft-1", sft, base)
    _trained(warehouse, registry, "whisper_preference_model", "dpo-1", dpo, sft)
    models, trained = _contenders("best", "asr-l1", warehouse, registry, hub)
    assert list(models) == ["incumbent", "sft", "preference"] and trained == ["sft", "preference"]
    assert models["incumbent"] == {"model_id": "baseline", "checkpoint": base}
    models, trained = _contenders("preference", "asr-l1", warehouse, registry, hub)
    assert list(models) == ["incumbent", "sft", "preference"] and trained == ["preference"]
    with pytest.raises(FileNotFoundError, match="whisper_rl_model"):
        _contenders("rl", "asr-l1", warehouse, registry, hub)
    with pytest.raises(ValueError, match="'best' or one of"):
        _contenders("dpo", "asr-l1", warehouse, registry, hub)


def test_the_eval_shows_the_model_an_rl_candidate_started_from(warehouse, registry, tmp_path):
    """GRPO in its own loop from an earlier loop's DPO: the table has the DPO model too, so
    'lowered WER from its start' shows."""
    from assets.speech.contenders import contenders as _contenders
    from resources.model_hub import ModelHub

    hub = ModelHub(baseline_asr=str(tmp_path))
    base = str(tmp_path)  # the hub's baseline: the incumbent until something is promoted
    sft, dpo, rl = (tmp_path / n for n in ("sft", "dpo", "rl"))
    _trained(warehouse, registry, "whisper_sft_model", "sft-1", sft, base, loop="asr-l0")
    _trained(warehouse, registry, "whisper_preference_model", "dpo-1", dpo, sft, loop="asr-l0")
    _trained(warehouse, registry, "whisper_rl_model", "grpo-1", rl, dpo)
    models, trained = _contenders("best", "asr-l1", warehouse, registry, hub)
    assert list(models) == ["incumbent", "start", "rl"] and trained == ["rl"]
    assert models["start"] == {"model_id": "dpo-1", "checkpoint": str(dpo)}
    assert models["rl"] == {"model_id": "grpo-1", "checkpoint": str(rl)}
    # GRPO from the baseline: its start is already the incumbent's column
    _trained(warehouse, registry, "whisper_rl_model", "grpo-2", rl, base)
    models, _ = _contenders("best", "asr-l1", warehouse, registry, hub)
    assert list(models) == ["incumbent", "rl"]


def test_intermediate_checkpoints_compete_and_a_winner_is_registered(warehouse, registry,
                                                                     tmp_path):
    from assets.speech.contenders import contenders, register_checkpoint
    from resources.model_hub import ModelHub

    hub = ModelHub(baseline_asr=str(tmp_path))
    run = tmp_path / "dpo" / "checkpoints"
    for step in (25, 50, 75):
        (run / f"step-{step:08d}").mkdir(parents=True)
        (run / f"step-{step:08d}" / "config.json").write_text("{}")
    (run / "step-00000100").mkdir()  # no config.json: an incomplete folder is not a model
    _trained(warehouse, registry, "whisper_preference_model", "dpo-1", run / "step-00000075",
             tmp_path)
    models, trained = contenders("best", "asr-l1", warehouse, registry, hub, checkpoints=True)
    assert trained == ["preference.step25", "preference.step50", "preference"]
    assert models["preference.step50"] == {"model_id": "dpo-1.step50",
                                           "checkpoint": str(run / "step-00000050")}
    assert contenders("best", "asr-l1", warehouse, registry, hub)[1] == ["preference"]
    register_checkpoint(registry, models["preference.step50"], "asr-l1")
    row = registry.get("dpo-1.step50")
    assert (row["stage"], row["checkpoint"], row["config"]["step"]) == (
        "dpo", str(run / "step-00000050"), 50)


def test_a_loop_evaluation_says_when_its_candidate_only_tied():
    from training.trl_backend import loop_eval

    def model(score):
        return {"score": score, "tasks": {"audio_qa": score}, "blind_tasks": {}}

    models = {"incumbent": model(0.0), "sft": model(0.5), "dpo": model(0.5), "grpo": model(0.25)}
    tied = loop_eval.decide(models, ["sft", "dpo", "grpo"], "incumbent")
    assert tied["candidate"] == "sft"
    assert tied["selection"] == "sft: tied with dpo at 0.500, first in loop order"
    models["dpo"] = model(0.75)
    assert loop_eval.decide(models, ["sft", "dpo", "grpo"], "incumbent")["selection"] == \
        "dpo: highest score of sft, dpo, grpo"

"""Preference training launched from Dagster, out of process through torchrun and Pipes."""

from datetime import UTC, datetime

from dagster import DagsterInstance, materialize
from transformers import WhisperForConditionalGeneration

from assets.preferences import preference_pairs
from assets.training import whisper_preference_model
from labeling.testing import write_tone
from pipelines.partitions import BATCHES
from resources.model_hub import ModelHub
from resources.training_launcher import TrainingLauncher

NOW = datetime.now(UTC)


def test_dpo_run_reports_metrics_curves_and_a_loadable_checkpoint(
        warehouse, tmp_path, tiny_whisper_dir):
    refs = ["the cat sat on the mat", "good morning everyone", "see you tomorrow"]
    clips = []
    for i, ref in enumerate(refs):
        path = write_tone(tmp_path / f"{i}.wav", seconds=0.5, seed=i)
        clips.append({"clip_id": f"{i:064x}", "source_path": str(path), "sample_rate": 16000,
                      "channels": 1, "duration_s": 0.5, "rms_dbfs": -20.0, "peak_dbfs": -3.0,
                      "text": ref, "tags": "{}", "ingested_at": NOW})
    warehouse.write_partition("audio_clips", "b", clips)
    warehouse.write_partition("asr_hypotheses", "b", [
        {"clip_id": c["clip_id"], "model": "m", "kind": "beam", "rank": r, "seed": 0,
         "text": text, "avg_logprob": -0.5, "num_tokens": 4, "created_at": NOW}
        for c in clips for r, text in enumerate([c["text"], c["text"].split()[0]])])
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, ["b"])
        result = materialize(
            [preference_pairs, whisper_preference_model], partition_key="b", instance=instance,
            resources={"warehouse": warehouse, "training_launcher": TrainingLauncher(),
                       "model_hub": ModelHub(cache_dir=str(tmp_path / "models"))},
            run_config={"ops": {"whisper_preference_model": {"config": {
                "base_model": str(tiny_whisper_dir), "max_steps": 2, "batch_size": 2,
                "beta": 0.5}}}})
    assert result.success
    events = result.get_asset_materialization_events()
    (mat,) = [e.event_specific_data.materialization for e in events
              if e.asset_key.to_user_string() == "whisper_preference_model"]
    meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    assert "data:image/png;base64," in meta["curves"]
    checkpoint = next(str(v) for k, v in meta.items() if "checkpoint" in k)
    WhisperForConditionalGeneration.from_pretrained(checkpoint)


def test_launcher_command_is_torchrun_on_the_training_entry_point(tmp_path):
    cmd = TrainingLauncher(nproc_per_node=2).command(tmp_path / "c.json")
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    assert cmd[cmd.index("--nproc-per-node") + 1] == "2"
    assert cmd[-3:] == ["-m", "training.run", str(tmp_path / "c.json")]

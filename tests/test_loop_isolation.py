"""Loops as partitions, as a user meets them: two `rlfoundry run` at once each gate and
promote only their own candidate; a loop whose launcher is killed leaves no training behind
and resumes from its last checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from labeling.testing import write_manifest, write_tone
from resources.registry import ModelRegistry
from resources.warehouse import Warehouse


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_whisper_dir):
    """A labeled train batch and an eval batch in a home the module's loops share (each
    loop is its own partition); the CLI's environment."""
    tmp_path = tmp_path_factory.mktemp("loops")
    home = tmp_path / "home"
    env = {**os.environ, "RLFOUNDRY_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "RLFOUNDRY_BASELINE_ASR": str(tiny_whisper_dir), "HF_HUB_OFFLINE": "1"}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for key in ("RLFOUNDRY_HOME", "DAGSTER_HOME"):
            monkeypatch.setenv(key, env[key])
        yield _labeled(env, tmp_path)


def _labeled(env, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    for i in range(4):
        write_tone(media / f"{i}.wav", seconds=0.6, seed=i, freq=300 + 90 * i)
    train = write_manifest(media / "train.jsonl", [
        {"audio_filepath": f"{i}.wav", "text": t} for i, t in
        enumerate(["the cat sat down", "good morning to you", "see you soon"])])
    dev = write_manifest(media / "dev.jsonl", [
        {"audio_filepath": "3.wav", "text": "good night", "accent": "us"}])
    _cli(env, "ingest", train, "--batch", "calls")
    _cli(env, "ingest", dev, "--batch", "dev", "--role", "eval")
    config = tmp_path / "label.json"
    config.write_text(json.dumps({"ops": {"asr_hypotheses": {"config": {
        "num_beams": 2, "num_samples": 1}}}}))
    _cli(env, "job", "speech_data", "--batch", "calls", "--config", config)
    return env


def _cli(env, *args, check=True):
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", *map(str, args)], env=env,
                            capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _loop_config(path: Path, sft_steps: int, tolerance: float, save_every: int = 25) -> Path:
    path.write_text(json.dumps({"ops": {
        "whisper_sft_model": {"config": {"max_steps": sft_steps, "batch_size": 2,
                                         "warmup_steps": 0, "save_every": save_every}},
        "whisper_preference_model": {"config": {"max_steps": 1, "batch_size": 2}},
        "asr_eval": {"config": {"group_by": ["accent"], "max_wer_increase": tolerance,
                                "candidate": "preference"}}}}))
    return path


def _start_run(env, config, log):
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "--train", "calls",
                             "--eval", "dev", "--config", str(config)], env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def test_two_loops_at_once_each_gate_and_promote_only_their_own_candidate(env, tmp_path):
    passing = _loop_config(tmp_path / "a.json", sft_steps=2, tolerance=100.0)
    refused = _loop_config(tmp_path / "b.json", sft_steps=3, tolerance=-10.0)
    runs = [_start_run(env, c, tmp_path / f"{c.stem}.log") for c in (passing, refused)]
    codes = [r.wait(timeout=600) for r in runs]
    logs = [(tmp_path / f"{n}.log").read_text() for n in ("a", "b")]
    assert codes == [0, 3], logs  # promoted; evaluated and refused by the gate
    loop_a, loop_b = (log.split(", loop ")[1].split(":")[0] for log in logs)
    assert loop_a != loop_b
    warehouse = Warehouse()
    for loop, steps, passed in ((loop_a, 2, True), (loop_b, 3, False)):
        evaluation = warehouse.read_output("asr_eval", loop)
        assert evaluation["models"]["candidate"]["model_id"] == f"dpo-{loop}"
        assert evaluation["decision"]["passed"] is passed
        sft = ModelRegistry().get(f"sft-{loop}")
        assert sft["config"]["max_steps"] == steps and sft["loop"] == loop
    champion = ModelRegistry().champion("asr")
    assert champion["model_id"] == f"dpo-{loop_a}"
    assert not ModelRegistry().get(f"dpo-{loop_b}")["promoted"]
    assert f"NOT PROMOTED dpo-{loop_b}" in logs[1] and f"PROMOTED dpo-{loop_a}" in logs[0]


def _training_processes(tag: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(p.info["cmdline"] or [])
        if tag in cmdline and ("training.run" in cmdline or "torch.distributed.run" in cmdline
                               or "training.runtime.guard" in cmdline):
            found.append(p)
    return found


def test_killing_a_loop_mid_training_leaves_nothing_running_and_it_resumes(env, tmp_path):
    config = _loop_config(tmp_path / "long.json", sft_steps=150, tolerance=100.0, save_every=5)
    sft_root = Path(env["RLFOUNDRY_HOME"]) / "warehouse" / "_reports" / "whisper_sft_model"
    earlier = set(sft_root.glob("*/latest.json"))  # the other test's loops
    run = _start_run(env, config, tmp_path / "run.log")
    deadline = time.monotonic() + 300
    while not set(sft_root.glob("*/latest.json")) - earlier:
        assert run.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.2)
    (out,) = [p.parent for p in set(sft_root.glob("*/latest.json")) - earlier]
    loop = out.name
    assert _training_processes(str(out))  # training is under way
    os.kill(run.pid, signal.SIGKILL)  # no chance to clean up
    run.wait()
    leftover = _training_processes(str(out))
    gone, alive = psutil.wait_procs(leftover, timeout=40)
    assert not alive, [" ".join(p.cmdline()) for p in alive]
    checkpoint_step = json.loads((out / "latest.json").read_text())["step"]
    assert 0 < checkpoint_step < 150

    result = _cli(env, "run", "--resume", loop)
    assert "resuming speech_loop" in result.stdout and "whisper_sft_model" in result.stdout
    assert "speech_training_set" not in result.stdout.split("resuming")[1].split("\n")[0]
    assert f"resumed_from_step={checkpoint_step}," in result.stdout  # its summary line
    assert f"PROMOTED dpo-{loop}" in result.stdout
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").open()]
    assert steps == list(range(1, 151))  # one curve, no step twice
    ids = [m["model_id"] for m in ModelRegistry().all_models("asr") if m["loop"] == loop]
    assert sorted(ids) == sorted([f"sft-{loop}", f"dpo-{loop}"])  # registered once each
    assert ModelRegistry().get(f"sft-{loop}")["train_metrics"]

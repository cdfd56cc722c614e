"""GRPO step time of the TRL backend, split into generation, scoring and backward, for the tiny
VLM (LLaVA) and the tiny ALM (Qwen2-Audio).

Run (from the repository root):

    .venv/bin/python benchmarks/trl_grpo_step.py [--steps 6] [--batch-size 4]
        [--generations 4] [--max-completion-length 16] [--families vlm,alm]
        [--device cuda --precision bf16] [--vlm-model DIR] [--alm-model DIR]

Each family trains ``--steps`` GRPO steps with the backend's own trainer
(:func:`training.trl_backend.train.build_trainer`: TRL's GRPOTrainer for the LLaVA,
:class:`~training.trl_backend.audio_trainer.AudioGRPOTrainer` for the Qwen2-Audio) on its
chains' rows (quadrant pointing and video questions; the audio chain's questions about tone
clips), ``--batch-size`` prompts of ``--generations`` completions, the k3 KL to a frozen
reference (beta 0.04). Timers around the trainer's methods split each step:

* ``generation``: ``_generate`` (prompts rendered and processed, then sampled); of which
  ``prompt_processing`` is ``_tokenize_prompts`` (for the ALM: decoding the clip, its log-mel
  features, the expanded audio tokens);
* ``scoring``: ``_calculate_rewards`` (the reward functions);
* ``reference``: the no-grad log-prob passes (the frozen reference for the KL; the old policy
  when generation and optimisation are not aligned);
* ``policy_forward``: ``_compute_loss`` (the policy's log-probs with grad, the loss);
* ``backward``: ``accelerator.backward``;
* ``other``: the rest of the step (advantages, optimizer step, clipping, logging, data).

Reported: medians over steps 2..N (step 1 warms up), seconds and shares of the step, the
completion length, parameter counts, the load average; on CUDA the peak memory and the GPU
utilisation sampled by ``nvidia-smi`` during training. Written to
``benchmarks/results/trl_grpo_step.json`` (CPU) or ``trl_grpo_step_<precision>_gpu.json``.
The tiny models' answers are random: their completions always run to the length limit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ("generation", "prompt_processing", "scoring", "reference", "policy_forward",
              "backward")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4, help="prompts per step")
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--max-completion-length", type=int, default=16)
    parser.add_argument("--families", default="vlm,alm")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--precision", default="fp32", help="fp32 | bf16 | fp16 (CUDA only)")
    parser.add_argument("--vlm-model", default=None, help="a LLaVA folder (default: tiny)")
    parser.add_argument("--alm-model", default=None, help="a Qwen2-Audio folder (default: tiny)")
    return parser.parse_args(argv)


class StepTimers:
    """Seconds per component per optimizer step, from wrappers around trainer methods."""

    def __init__(self, trainer, cuda: bool):
        self.trainer, self.cuda = trainer, cuda
        self.by_step: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def wrap(self, owner, name: str, label: str, only_without_grad: bool = False) -> None:
        import torch

        original = getattr(owner, name)

        def timed(*args, **kwargs):
            if only_without_grad and torch.is_grad_enabled():
                return original(*args, **kwargs)
            self._sync()
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._sync()
                step = self.trainer.state.global_step + 1
                self.by_step[step][label] += time.perf_counter() - began

        setattr(owner, name, timed)

    def _sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()


class GpuSampler(threading.Thread):
    """``nvidia-smi`` utilisation every 0.2 s while training runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu",
                                      "--format=csv,noheader,nounits"], capture_output=True,
                                     text=True, timeout=5, check=True).stdout
                self.samples.append(float(out.split()[0]))
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                return
            self.done.wait(0.2)


def family_data(family: str, folder: Path) -> str:
    if family == "vlm":
        from training.trl_backend.synthetic import quadrant_pointing, video_choice_rows

        return ",".join(str(p) for p in (quadrant_pointing(folder / "image", n=16, seed=0),
                                           video_choice_rows(folder / "video", n=8, seed=0)))
    from training.trl_backend.synthetic_audio import chain_audio_questions

    return str(chain_audio_questions(folder / "audio", clips=2, seed=0))


def family_model(family: str, folder: Path, args) -> str:
    given = args.vlm_model if family == "vlm" else args.alm_model
    if given:
        return given
    from models.tiny import build_tiny_llava, build_tiny_qwen2_audio

    build = build_tiny_llava if family == "vlm" else build_tiny_qwen2_audio
    return str(build(folder / "model"))


def bench(family: str, args, folder: Path) -> dict:
    import torch

    from training.runtime.metrics_log import read_metrics
    from training.trl_backend.callback import MetricsCallback
    from training.trl_backend.config import TrlConfig
    from training.trl_backend.train import build_trainer

    cuda = args.device.startswith("cuda")
    config = TrlConfig(
        family=family, objective="grpo", model=family_model(family, folder, args),
        data=family_data(family, folder), output_dir=str(folder / "run"),
        max_steps=args.steps, batch_size=args.batch_size, num_generations=args.generations,
        max_completion_length=args.max_completion_length, beta=0.04, learning_rate=1e-5,
        save_every=10_000, log_every=10_000, precision=args.precision,
        entropy_stop_fraction=0.0, collapse_patience=10_000)
    trainer, _ = build_trainer(config)
    trainer.add_callback(MetricsCallback(folder / "run", log_every=10_000))
    timers = StepTimers(trainer, cuda)
    for name, label in (("_generate", "generation"), ("_tokenize_prompts", "prompt_processing"),
                        ("_calculate_rewards", "scoring"), ("_compute_loss", "policy_forward")):
        timers.wrap(trainer, name, label)
    timers.wrap(trainer, "_get_per_token_logps_and_entropies", "reference",
                only_without_grad=True)
    timers.wrap(trainer.accelerator, "backward", "backward")
    sampler = GpuSampler() if cuda and shutil.which("nvidia-smi") else None
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    if sampler:
        sampler.start()
    trainer.train()
    if sampler:
        sampler.done.set()
        sampler.join()
    rows = {r["step"]: r for r in read_metrics(folder / "run" / "metrics.jsonl")}
    steps = [s for s in sorted(rows) if s >= 2] or sorted(rows)
    step_s = statistics.median(rows[s]["step_time_s"] for s in steps)
    split = {c: statistics.median(timers.by_step[s].get(c, 0.0) for s in steps)
             for c in COMPONENTS}
    measured = sum(v for c, v in split.items() if c != "prompt_processing")
    split["other"] = max(step_s - measured, 0.0)
    model = trainer.model
    result = {
        "model": config.model if (args.vlm_model or args.alm_model) else f"tiny {family}",
        "parameters": sum(p.numel() for p in model.parameters()),
        "completions_per_step": args.batch_size * args.generations,
        "completion_tokens": statistics.median(rows[s].get("completion_tokens", 0)
                                               for s in steps),
        "step_s": round(step_s, 4),
        "split_s": {k: round(v, 4) for k, v in split.items()},
        "split_share": {k: round(v / step_s, 3) for k, v in split.items()},
        "completions_per_s": round(args.batch_size * args.generations / step_s, 2),
    }
    if cuda:
        result["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        if sampler and sampler.samples:
            result["gpu_utilization_pct"] = round(statistics.mean(sampler.samples), 1)
    return result


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the backend picks CUDA whenever it sees one
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(ROOT))
    import torch

    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for family in [f.strip() for f in args.families.split(",") if f.strip()]:
            results[family] = bench(family, args, Path(tmp) / family)
    report = {
        "device": args.device, "device_name": (torch.cuda.get_device_name()
                                               if args.device.startswith("cuda") else "cpu"),
        "precision": args.precision, "threads": args.threads, "steps": args.steps,
        "batch_size": args.batch_size, "generations": args.generations,
        "max_completion_length": args.max_completion_length, "beta": 0.04,
        "torch": torch.__version__, "families": results, "load_average": os.getloadavg(),
    }
    name = ("trl_grpo_step.json" if args.device == "cpu"
            else f"trl_grpo_step_{args.precision}_gpu.json")
    out = ROOT / "benchmarks" / "results" / name
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

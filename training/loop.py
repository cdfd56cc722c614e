"""The Whisper training loop: SFT, DPO and MPO on one code path, resumable, DDP-ready.

One optimizer step = ``grad_accum_steps`` micro-batches of ``batch_size`` examples per process.
AdamW with linear warmup then linear decay to 0 over ``lr_schedule_steps`` (default
``max_steps``); autocast (bf16/fp16) on CUDA only, the same code path as fp32.

Per step, ``<output_dir>/metrics.jsonl`` gets one JSON line: ``loss``, each ``loss/<term>``,
for pairs ``rewards/chosen``, ``rewards/rejected``, ``rewards/accuracies``, ``rewards/margins``
(TRL's names), ``entropy`` (mean token entropy of the policy on chosen transcripts), ``kl``,
``lr``, ``grad_norm``, ``step_time_s``. Under DDP the numbers are averaged over processes.

``kl`` estimates KL(policy ‖ reference) per token as the batch mean of
``(policy_logp − ref_logp) / tokens`` on the chosen transcripts: the "k1" Monte-Carlo estimator,
but over the data's transcripts rather than samples from the policy, so it is a drift monitor
(0 at step 0, grows as the policy leaves the reference; can be negative), not an unbiased KL.

Checkpoints: ``checkpoints/step-NNNNNNNN/`` holds the model (``save_pretrained``: safetensors),
the processor and ``trainer_state.pt`` (optimizer, scheduler, grad scaler, step, torch / CUDA /
numpy / python RNG states). That file holds only tensors and plain Python containers and numbers
(numpy's RNG state is converted to a tensor), so it loads with ``torch.load(weights_only=True)``;
nothing is unpickled. A checkpoint is written to a temp folder and renamed into place, then
``latest.json`` (also atomically replaced) points at it. If ``latest.json`` exists the run
resumes: same step count, same data order (a function of seed and step), same RNG and optimizer
state, hence on CPU the same loss curve as an uninterrupted run; metrics.jsonl rows after the
checkpoint are dropped first.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from models.asr import WhisperASR
from training.config import ONLINE_OBJECTIVES, TrainConfig
from training.curriculum import RewardSchedule, curriculum_batch, stage_for_step
from training.curves import read_metrics
from training.data import Batch, TrainData, batch_rows, load_train_data
from training.losses import dpo_sigmoid_loss, mpo_loss, sft_loss
from training.monitors import EntropyWatch
from training.online import OnlineContext, online_step_loss
from training.reference_cache import (
    CACHE_NAME,
    ReferenceLogps,
    compute_reference,
    fingerprint,
    load_reference,
    save_reference,
)
from training.reward_composite import RewardWeights
from training.whisper_logps import WhisperScorer, WhisperTokens

METRICS_NAME = "metrics.jsonl"
LATEST_NAME = "latest.json"
STATE_NAME = "trainer_state.pt"

Log = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    """What a finished run reports: final step, checkpoint folder and last metrics."""

    step: int
    checkpoint: Path
    metrics: dict[str, Any]
    output_dir: Path
    resumed_from: int | None
    stopped: str | None = None
    """Why the entropy watch stopped the run early (the checkpoint is the last one before)."""


class TrainingStopped(RuntimeError):
    """The entropy watch stopped a run before it had saved any checkpoint."""


# ----------------------------------------------------------------------------- processes, device


@dataclass(frozen=True)
class DistInfo:
    """Rank and world size; world 1 without an initialised process group."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def current(cls) -> DistInfo:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return cls(
                torch.distributed.get_rank(),
                torch.distributed.get_world_size(),
                int(os.environ.get("LOCAL_RANK", 0)),
            )
        return cls()

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


def resolve_device(name: str, dist: DistInfo) -> torch.device:
    """`auto`: CUDA (cuda:LOCAL_RANK) when available, else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", dist.local_rank)
    return device


def amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32; CPU always trains in fp32."""
    if precision == "fp32":
        return None
    if device.type != "cuda":
        warnings.warn(f"precision {precision!r} needs CUDA; training in fp32 on {device}",
                      stacklevel=2)
        return None
    return torch.bfloat16 if precision == "bf16" else torch.float16


def autocast_factory(device: torch.device, dtype: torch.dtype | None):
    """A no-argument context-manager factory: autocast to `dtype`, or nothing."""
    return partial(torch.autocast, device_type=device.type, dtype=dtype, enabled=dtype is not None)


# ----------------------------------------------------------------------------- losses


def step_loss(
    config: TrainConfig, scorer: torch.nn.Module, batch: Batch, ref: ReferenceLogps, autocast
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The objective's loss on one micro-batch and its detached metrics."""
    paired = batch.rejected is not None
    texts = batch.chosen + (batch.rejected or [])
    clips = batch.clips * (2 if paired else 1)
    with autocast():
        out = scorer(batch.features, clips, texts)
    b = len(batch.chosen)
    logps, tokens = out.logps.float(), out.tokens
    chosen, chosen_n = logps[:b], tokens[:b]
    ref_chosen, ref_rejected = (t.to(logps.device) for t in ref.lookup(batch.keys))
    metrics: dict[str, torch.Tensor] = {}
    if config.objective == "sft":
        loss = sft_loss(chosen, chosen_n)
        metrics["loss/sft"] = loss.detach()
    else:
        rejected = logps[b:]
        if config.objective == "dpo":
            result = dpo_sigmoid_loss(
                chosen, rejected, ref_chosen, ref_rejected,
                beta=config.beta, label_smoothing=config.label_smoothing,
            )
            loss = result.loss
            if config.sft_weight:
                nll = sft_loss(chosen, chosen_n)
                result.components["sft"] = nll.detach()
                loss = loss + config.sft_weight * nll
        else:
            result = mpo_loss(
                chosen, rejected, ref_chosen, ref_rejected, chosen_n,
                beta=config.beta, loss_types=config.loss_types, weights=config.loss_weights,
            )
            loss = result.loss
        metrics.update({
            "rewards/chosen": result.chosen_rewards.mean(),
            "rewards/rejected": result.rejected_rewards.mean(),
            "rewards/accuracies": result.reward_accuracy,
            "rewards/margins": result.margin,
        })
        metrics.update({f"loss/{k}": v for k, v in result.components.items()})
    metrics["loss"] = loss.detach()
    metrics["entropy"] = out.entropy[:b].mean()
    metrics["kl"] = ((chosen.detach() - ref_chosen) / chosen_n).mean()
    return loss, metrics


def lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    """Linear warmup over `warmup` steps, then linear decay to 0 at `total` (HF's convention)."""

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


# ----------------------------------------------------------------------------- checkpoints


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The checkpoint folder `latest.json` points at, if it is complete."""
    pointer = output_dir / LATEST_NAME
    if not pointer.is_file():
        return None
    folder = output_dir / json.loads(pointer.read_text())["checkpoint"]
    if not (folder / STATE_NAME).is_file():
        raise FileNotFoundError(
            f"{pointer} points at {folder}, which has no {STATE_NAME}; delete {pointer} to start "
            "over or restore the checkpoint"
        )
    return folder


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "gauss": gauss},
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save_checkpoint(
    output_dir: Path, step: int, model, processor, optimizer, scheduler, scaler
) -> Path:
    """Write checkpoint `step` atomically and point `latest.json` at it."""
    root = output_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)  # transformers 5 always writes safetensors
    processor.save_pretrained(tmp)
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": _rng_state(),
    }
    torch.save(state, tmp / STATE_NAME)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer = output_dir / LATEST_NAME
    pointer_tmp = output_dir / (LATEST_NAME + ".tmp")
    pointer_tmp.write_text(json.dumps({"step": step, "checkpoint": f"checkpoints/{final.name}"}))
    os.replace(pointer_tmp, pointer)
    return final


def load_weights(model: torch.nn.Module, folder: Path) -> None:
    """Checkpoint weights into `model`; only tied output-projection keys may be absent."""
    state = load_file(str(folder / "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("proj_out.weight")]
    if missing or unexpected:
        raise RuntimeError(f"{folder}: weights do not fit the model: missing {missing}, "
                           f"unexpected {unexpected}")


def restore_state(folder: Path, optimizer, scheduler, scaler) -> int:
    """Optimizer, scheduler, scaler and RNG states of a checkpoint; returns its step."""
    state = torch.load(folder / STATE_NAME, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"])
    return int(state["step"])


def _truncate_metrics(path: Path, step: int) -> dict[str, Any]:
    """Drop metrics rows after `step` (logged past the last checkpoint); return the last kept."""
    if not path.is_file():
        return {}
    kept = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
    os.replace(tmp, path)
    return kept[-1] if kept else {}


# ----------------------------------------------------------------------------- the run


def prepare_reference(
    config: TrainConfig, scorer: WhisperScorer, data: TrainData, autocast, dist: DistInfo
) -> ReferenceLogps:
    """The cached reference log-probs, computed from the starting model if absent or stale."""
    path = Path(config.output_dir) / CACHE_NAME
    key = fingerprint(config.data, config.model)
    if dist.main and load_reference(path, key) is None:
        ref = compute_reference(scorer, data, batch_size=config.batch_size, autocast=autocast)
        save_reference(ref, path, key)
    dist.barrier()
    ref = load_reference(path, key)
    if ref is None:  # pragma: no cover - written just above
        raise RuntimeError(f"{path}: reference cache missing after computing it")
    return ref


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _reduce(metrics: dict[str, torch.Tensor], dist: DistInfo) -> dict[str, float]:
    if dist.world > 1:  # per-bucket rewards exist only where a rank saw that bucket
        metrics = {k: v for k, v in metrics.items() if not k.startswith("reward/bucket/")}
    names = sorted(metrics)
    values = torch.stack([metrics[n].detach().float().reshape(()) for n in names])
    if dist.world > 1:
        values = values.to(torch.device("cuda", dist.local_rank)
                           if torch.cuda.is_available() else "cpu")
        torch.distributed.all_reduce(values)
        values = values / dist.world
    return {n: float(v) for n, v in zip(names, values.cpu(), strict=True)}


def train(config: TrainConfig, *, log: Log | None = None) -> TrainResult:
    """Train (or resume) per `config`; returns the final checkpoint. See the module docstring."""
    config.validate()
    dist = DistInfo.current()
    device = resolve_device(config.device, dist)
    autocast = autocast_factory(device, amp_dtype(config.precision, device))
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    resume_from = latest_checkpoint(out)
    _seed_all(config.seed)

    processor = WhisperProcessor.from_pretrained(config.model)
    model = WhisperForConditionalGeneration.from_pretrained(config.model, dtype=torch.float32)
    model.to(device)
    tokens = WhisperTokens.of(model, processor.tokenizer, config.language)
    online = config.objective in ONLINE_OBJECTIVES
    data = load_train_data(
        config.data,
        paired=config.objective in ("dpo", "mpo"),
        targets=partial(tokens.target, processor.tokenizer),
        feature_extractor=processor.feature_extractor,
    )
    scorer = WhisperScorer(model, tokens, config.freeze_encoder)
    if online:
        ref, ctx = None, _online_context(config, model, processor, tokens, device)
    else:
        ref, ctx = prepare_reference(config, scorer, data, autocast, dist), None
    # SFT's entropy on the references falls because it learns them: a collapse is a failure
    # of policy optimisation (preference and online RL) only, so SFT is not watched.
    watched = config.objective != "sft"
    watch = EntropyWatch(config.entropy_warn_fraction if watched else 0.0,
                         config.entropy_stop_fraction if watched else 0.0,
                         config.collapse_patience, config.entropy_window)
    buckets = [e.tags.get("bucket") for e in data.examples]
    reward_schedule = RewardSchedule(config.curriculum_threshold, config.curriculum_window)
    stopped: str | None = None

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(config.warmup_steps, config.schedule_steps)
    )
    scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16"
                                  and device.type == "cuda")
    step, last = 0, {}
    if resume_from is not None:
        load_weights(model, resume_from)
        step = restore_state(resume_from, optimizer, scheduler, scaler)
        if dist.main:
            last = _truncate_metrics(out / METRICS_NAME, step)
    elif dist.main:
        config.to_json(out / "config.json")
        (out / METRICS_NAME).unlink(missing_ok=True)
    dist.barrier()
    if resume_from is not None:  # every rank, once the main one has truncated the file
        logged = read_metrics(out / METRICS_NAME)
        reward_schedule.stage = int(logged[-1].get("curriculum/next_stage", 0) if logged else 0)
        watch.start = _start_entropy(logged, config.entropy_window)

    module: torch.nn.Module = scorer
    if dist.world > 1:
        module = torch.nn.parallel.DistributedDataParallel(
            scorer, device_ids=[device.index] if device.type == "cuda" else None
        )
    module.train()
    checkpoint = resume_from
    while step < config.max_steps:
        started = time.perf_counter()
        lr = scheduler.get_last_lr()[0]
        optimizer.zero_grad(set_to_none=True)
        sums: dict[str, torch.Tensor] = {}
        stage = (stage_for_step(step, config.max_steps, config.curriculum_boundaries)
                 if config.curriculum == "steps" else reward_schedule.stage)
        for micro in range(config.grad_accum_steps):
            index = (step * config.grad_accum_steps + micro) * dist.world + dist.rank
            batch = data.batch(_rows(config, len(data), buckets, stage, index))
            positions = range(index * config.batch_size, (index + 1) * config.batch_size)
            final_micro = micro == config.grad_accum_steps - 1
            sync = contextlib.nullcontext() if dist.world == 1 or final_micro else module.no_sync()
            with sync:
                if ctx is not None:
                    seeds = [config.seed * 1_000_003 + p for p in positions]
                    loss, metrics = online_step_loss(config, module, scorer, ctx, batch, seeds,
                                                     autocast)
                else:
                    loss, metrics = step_loss(config, module, batch, ref, autocast)
                scaler.scale(loss / config.grad_accum_steps).backward()
            for name, value in metrics.items():
                sums[name] = sums.get(name, 0) + value / config.grad_accum_steps
        scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm or math.inf)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        step += 1
        record = {"step": step, **_reduce(sums, dist), "lr": lr, "grad_norm": float(grad_norm),
                  "step_time_s": time.perf_counter() - started}
        if config.curriculum != "none":
            record["curriculum/stage"] = stage
            if config.curriculum == "reward":
                record["curriculum/next_stage"] = reward_schedule.update(record["reward/mean"])
        verdict = watch.update(record["entropy"], record.get("frac_reward_zero_std"))
        if verdict.level != "ok":
            record["watch"] = f"{verdict.level}: {verdict.message}"
        if verdict.level == "stop":
            stopped = f"stopped at step {step}: {verdict.message}"
            if dist.main:
                with (out / METRICS_NAME).open("a") as fh:
                    fh.write(json.dumps(record) + "\n")
                if log is not None:
                    log(record)
            break
        last = record
        if dist.main:
            with (out / METRICS_NAME).open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            due = step % config.log_every == 0 or step == config.max_steps
            if log is not None and (due or verdict.level == "warn" and not watch.warned):
                log(record)
            watch.warned = watch.warned or verdict.level == "warn"
        if step % config.save_every == 0 or step == config.max_steps:
            if dist.main:
                checkpoint = save_checkpoint(out, step, model, processor, optimizer, scheduler,
                                             scaler)
            dist.barrier()
            checkpoint = latest_checkpoint(out)
    if checkpoint is None:
        if stopped:
            raise TrainingStopped(f"{stopped}; no checkpoint had been saved yet (lower "
                                  "save_every to keep one)")
        raise RuntimeError("no checkpoint was written")  # pragma: no cover - always saves
    resumed = None if resume_from is None else _step_of(resume_from)
    return TrainResult(_step_of(checkpoint) if stopped else step, checkpoint, last, out,
                       resumed, stopped)


def _rows(config: TrainConfig, n: int, buckets: list, stage: int, index: int) -> list[int]:
    """Rows of micro-batch `index`: the seeded stream, or the curriculum's open buckets."""
    if config.curriculum == "none":
        return batch_rows(n, config.batch_size, seed=config.seed, index=index)
    return curriculum_batch(buckets, stage, config.batch_size, seed=config.seed, index=index)


def _start_entropy(logged: list[dict], window: int) -> float | None:
    """Mean entropy of the run's first `window` logged steps (the watch's reference on resume)."""
    values = [r["entropy"] for r in logged[:window] if "entropy" in r]
    return sum(values) / len(values) if len(values) == window else None


def _online_context(config: TrainConfig, model, processor, tokens: WhisperTokens,
                    device: torch.device) -> OnlineContext:
    """Generation around the policy, and a frozen copy of the starting model for KL."""
    reference = WhisperForConditionalGeneration.from_pretrained(config.model,
                                                                dtype=torch.float32)
    reference.to(device).eval().requires_grad_(False)
    asr = WhisperASR(model, processor, name=config.model, language=config.language)
    return OnlineContext(asr, tokens, processor.tokenizer,
                         WhisperScorer(reference, tokens, freeze_encoder=True),
                         RewardWeights.from_mapping(config.reward_weights))


def _step_of(folder: Path) -> int:
    return int(folder.name.rsplit("-", 1)[-1])

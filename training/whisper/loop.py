"""The Whisper training loop: SFT, DPO, MPO and online RL on one code path, resumable, DDP-ready.

One optimizer step = ``grad_accum_steps`` micro-batches of ``batch_size`` examples per process.
AdamW with linear warmup then linear decay to 0 over ``lr_schedule_steps`` (default
``max_steps``); autocast (bf16/fp16) on CUDA only, the same code path as fp32. A micro-batch's
loss is :mod:`training.whisper.offline` (SFT, DPO, MPO) or :mod:`training.whisper.online`
(GRPO, MWER).

Per step, ``<output_dir>/metrics.jsonl`` (:mod:`training.runtime.metrics_log`) gets one JSON line:
the micro-batch metrics (see :mod:`training.whisper.offline`: ``loss``, ``loss/<term>`` (with
``loss/anchor_kl`` when ``anchor_kl > 0``), ``rewards/...``, ``entropy``, ``kl``), then ``lr``,
``grad_norm``, ``step_time_s``, the curriculum stage and the entropy watch's warning, if any.
Under DDP the numbers are averaged over processes.

Checkpoints (:mod:`training.runtime.checkpoints`) are saved every ``save_every`` steps and at the
end. If ``latest.json`` exists the run resumes: same step count, same data order (a function of
seed and step), same RNG and optimizer state, hence on CPU the same loss curve as an
uninterrupted run; metrics.jsonl rows after the checkpoint are dropped first.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from models.whisper.asr import WhisperASR
from training.config import ONLINE_OBJECTIVES, TrainConfig
from training.curriculum import RewardSchedule, curriculum_batch, stage_for_step
from training.monitors import EntropyWatch, TrainingStopped, Verdict
from training.rewards.composite import RewardWeights
from training.runtime.checkpoints import (
    latest_checkpoint,
    load_weights,
    restore_state,
    save_checkpoint,
    step_of,
)
from training.runtime.distributed import (
    DistInfo,
    amp_dtype,
    autocast_factory,
    data_parallel,
    reduce_metrics,
    resolve_device,
    seed_all,
)
from training.runtime.metrics_log import (
    METRICS_NAME,
    append_metrics,
    read_metrics,
    truncate_metrics,
)
from training.whisper.data import TrainData, batch_rows, load_train_data
from training.whisper.encoder_cache import EncoderStates
from training.whisper.logps import WhisperScorer, WhisperTokens
from training.whisper.offline import step_loss
from training.whisper.online import OnlineContext, online_step_loss
from training.whisper.reference_cache import (
    CACHE_NAME,
    ReferenceLogps,
    compute_reference,
    fingerprint,
    load_reference,
    save_reference,
)

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



@dataclass
class _Run:
    """What one run holds from set-up to its last step."""

    config: TrainConfig
    dist: DistInfo
    autocast: Callable[[], Any]
    out: Path
    model: WhisperForConditionalGeneration
    processor: WhisperProcessor
    data: TrainData
    scorer: WhisperScorer
    encoder: EncoderStates | None  # a frozen encoder's states per clip, cached
    ref: ReferenceLogps | None  # offline objectives: the frozen reference's log-probs
    ctx: OnlineContext | None  # online objectives: generation and the frozen reference
    anchor: WhisperScorer | None  # anchor_kl > 0: the frozen starting model
    watch: EntropyWatch
    buckets: list
    reward_schedule: RewardSchedule
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler


def train(config: TrainConfig, *, log: Log | None = None) -> TrainResult:
    """Train (or resume) per `config`; returns the final checkpoint. See the module docstring."""
    config.validate()
    dist = DistInfo.current()
    device = resolve_device(config.device, dist)
    autocast = autocast_factory(device, amp_dtype(config.precision, device))
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    resume_from = latest_checkpoint(out)
    seed_all(config.seed)
    run = _set_up(config, dist, device, autocast, out)
    step, last = _resume(run, resume_from)
    module = data_parallel(run.scorer, device, dist)
    module.train()
    checkpoint, stopped = resume_from, None
    while step < config.max_steps:
        record = _optimizer_step(run, module, step)
        step = record["step"]
        verdict = run.watch.update(record["entropy"], record.get("frac_reward_zero_std"))
        if verdict.level != "ok":
            record["watch"] = f"{verdict.level}: {verdict.message}"
        if verdict.level == "stop":
            stopped = f"stopped at step {step}: {verdict.message}"
            _log_step(run, record, verdict, log)
            break
        last = record
        _log_step(run, record, verdict, log)
        if step % config.save_every == 0 or step == config.max_steps:
            checkpoint = _save(run, step)
    if checkpoint is None:
        if stopped:
            raise TrainingStopped(f"{stopped}; no checkpoint had been saved yet (lower "
                                  "save_every to keep one)")
        raise RuntimeError("no checkpoint was written")  # pragma: no cover - always saves
    resumed = None if resume_from is None else step_of(resume_from)
    return TrainResult(step_of(checkpoint) if stopped else step, checkpoint, last, out,
                       resumed, stopped)


# ----------------------------------------------------------------------------- set-up, resume


def _set_up(config: TrainConfig, dist: DistInfo, device: torch.device, autocast,
            out: Path) -> _Run:
    """Model, data, reference, entropy watch, curriculum and optimizer of a fresh run."""
    processor = WhisperProcessor.from_pretrained(config.model)
    model = WhisperForConditionalGeneration.from_pretrained(config.model, dtype=torch.float32)
    model.to(device)
    tokens = WhisperTokens.of(model, processor.tokenizer, config.language)
    data = load_train_data(
        config.data,
        paired=config.objective in ("dpo", "mpo"),
        targets=partial(tokens.target, processor.tokenizer),
        feature_extractor=processor.feature_extractor,
    )
    scorer = WhisperScorer(model, tokens, config.freeze_encoder)
    encoder = _encoder_states(config, scorer, data, autocast, device)
    if config.objective in ONLINE_OBJECTIVES:
        ref, ctx = None, _online_context(config, model, processor, tokens, device)
    else:
        ref, ctx = prepare_reference(config, scorer, data, autocast, dist, encoder), None
    anchor = _frozen_start(config, tokens, device) if config.anchor_kl > 0 else None
    # SFT's entropy on the references falls because it learns them: a collapse is a failure
    # of policy optimisation (preference and online RL) only, so SFT is not watched.
    watched = config.objective != "sft"
    watch = EntropyWatch(config.entropy_warn_fraction if watched else 0.0,
                         config.entropy_stop_fraction if watched else 0.0,
                         config.collapse_patience, config.entropy_window)
    buckets = [e.tags.get("bucket") for e in data.examples]
    reward_schedule = RewardSchedule(config.curriculum_threshold, config.curriculum_window)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(config.warmup_steps, config.schedule_steps)
    )
    scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16"
                                  and device.type == "cuda")
    return _Run(config, dist, autocast, out, model, processor, data, scorer, encoder, ref, ctx,
                anchor, watch, buckets, reward_schedule, params, optimizer, scheduler, scaler)


def _encoder_states(config: TrainConfig, scorer: WhisperScorer, data: TrainData, autocast,
                    device: torch.device) -> EncoderStates | None:
    """The frozen encoder's per-clip state cache (None when the encoder trains or cap is 0)."""
    if not config.freeze_encoder or config.encoder_cache_mb == 0:
        return None

    def encode(features: torch.Tensor) -> torch.Tensor:
        with autocast():
            return scorer.encode(features)

    return EncoderStates(encode, data.features, config.encoder_cache_mb, device)


def prepare_reference(
    config: TrainConfig, scorer: WhisperScorer, data: TrainData, autocast, dist: DistInfo,
    encoder: EncoderStates | None = None,
) -> ReferenceLogps:
    """The cached reference log-probs, computed from the starting model if absent or stale."""
    path = Path(config.output_dir) / CACHE_NAME
    key = fingerprint(config.data, config.model)
    if dist.main and load_reference(path, key) is None:
        ref = compute_reference(scorer, data, batch_size=config.batch_size, autocast=autocast,
                                encoder=encoder)
        save_reference(ref, path, key)
    dist.barrier()
    ref = load_reference(path, key)
    if ref is None:  # pragma: no cover - written just above
        raise RuntimeError(f"{path}: reference cache missing after computing it")
    return ref


def _frozen_start(config: TrainConfig, tokens: WhisperTokens,
                  device: torch.device) -> WhisperScorer:
    """A frozen copy of the starting model (eval mode, no grad): the KL anchor of every
    objective that has one."""
    start = WhisperForConditionalGeneration.from_pretrained(config.model, dtype=torch.float32)
    start.to(device).eval().requires_grad_(False)
    return WhisperScorer(start, tokens, freeze_encoder=True).eval()


def _online_context(config: TrainConfig, model, processor, tokens: WhisperTokens,
                    device: torch.device) -> OnlineContext:
    """Generation around the policy, and a frozen copy of the starting model for KL."""
    asr = WhisperASR(model, processor, name=config.model, language=config.language)
    return OnlineContext(asr, tokens, processor.tokenizer,
                         _frozen_start(config, tokens, device),
                         RewardWeights.from_mapping(config.reward_weights))


def lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    """Linear warmup over `warmup` steps, then linear decay to 0 at `total` (HF's convention)."""

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def _resume(run: _Run, resume_from: Path | None) -> tuple[int, dict[str, Any]]:
    """The step to continue from and the last logged metrics, after restoring `resume_from`.

    Restored: weights, optimizer, scheduler, scaler, RNG, the metrics log (rows past the
    checkpoint dropped), the curriculum stage and the entropy watch's start. A fresh run writes
    its config and starts an empty metrics log instead.
    """
    metrics_path = run.out / METRICS_NAME
    step, last = 0, {}
    if resume_from is not None:
        load_weights(run.model, resume_from)
        step = restore_state(resume_from, run.optimizer, run.scheduler, run.scaler)
        if run.dist.main:
            last = truncate_metrics(metrics_path, step)
    elif run.dist.main:
        run.config.to_json(run.out / "config.json")
        metrics_path.unlink(missing_ok=True)
    run.dist.barrier()
    if resume_from is not None:  # every rank, once the main one has truncated the file
        logged = read_metrics(metrics_path)
        run.reward_schedule.stage = int(logged[-1].get("curriculum/next_stage", 0)
                                        if logged else 0)
        run.watch.start = _start_entropy(logged, run.config.entropy_window)
    return step, last


def _start_entropy(logged: list[dict], window: int) -> float | None:
    """Mean entropy of the run's first `window` logged steps (the watch's reference on resume)."""
    values = [r["entropy"] for r in logged[:window] if "entropy" in r]
    return sum(values) / len(values) if len(values) == window else None


# ----------------------------------------------------------------------------- one step


def _optimizer_step(run: _Run, module: torch.nn.Module, step: int) -> dict[str, Any]:
    """Optimizer step `step + 1` over its micro-batches; its metrics record, entropy watch aside."""
    config = run.config
    started = time.perf_counter()
    lr = run.scheduler.get_last_lr()[0]
    run.optimizer.zero_grad(set_to_none=True)
    stage = (stage_for_step(step, config.max_steps, config.curriculum_boundaries)
             if config.curriculum == "steps" else run.reward_schedule.stage)
    sums = _accumulate(run, module, step, stage)
    run.scaler.unscale_(run.optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(run.params, config.max_grad_norm or math.inf)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    record = {"step": step + 1, **reduce_metrics(sums, run.dist), "lr": lr,
              "grad_norm": float(grad_norm), "step_time_s": time.perf_counter() - started}
    if config.curriculum != "none":
        record["curriculum/stage"] = stage
        if config.curriculum == "reward":
            record["curriculum/next_stage"] = run.reward_schedule.update(record["reward/mean"])
    return record


def _accumulate(run: _Run, module: torch.nn.Module, step: int,
                stage: int) -> dict[str, torch.Tensor]:
    """Forward and backward over the step's micro-batches; their metrics, averaged."""
    config, dist = run.config, run.dist
    sums: dict[str, torch.Tensor] = {}
    for micro in range(config.grad_accum_steps):
        index = (step * config.grad_accum_steps + micro) * dist.world + dist.rank
        batch = run.data.batch(_rows(config, len(run.data), run.buckets, stage, index))
        positions = range(index * config.batch_size, (index + 1) * config.batch_size)
        final_micro = micro == config.grad_accum_steps - 1
        sync = contextlib.nullcontext() if dist.world == 1 or final_micro else module.no_sync()
        with sync:
            if run.ctx is not None:
                seeds = [config.seed * 1_000_003 + p for p in positions]
                loss, metrics = online_step_loss(config, module, run.scorer, run.ctx, batch,
                                                 seeds, run.autocast, run.encoder)
            else:
                loss, metrics = step_loss(config, module, batch, run.ref, run.autocast,
                                          run.encoder, run.anchor)
            run.scaler.scale(loss / config.grad_accum_steps).backward()
        for name, value in metrics.items():
            sums[name] = sums.get(name, 0) + value / config.grad_accum_steps
    return sums


def _rows(config: TrainConfig, n: int, buckets: list, stage: int, index: int) -> list[int]:
    """Rows of micro-batch `index`: the seeded stream, or the curriculum's open buckets."""
    if config.curriculum == "none":
        return batch_rows(n, config.batch_size, seed=config.seed, index=index)
    return curriculum_batch(buckets, stage, config.batch_size, seed=config.seed, index=index)


# ----------------------------------------------------------------------------- logging, saving


def _log_step(run: _Run, record: dict[str, Any], verdict: Verdict, log: Log | None) -> None:
    """Append the step to metrics.jsonl and report it when due (main process only).

    Due: every ``log_every`` steps, the last step, the first warning and a stop.
    """
    if not run.dist.main:
        return
    config, watch, step = run.config, run.watch, record["step"]
    append_metrics(run.out / METRICS_NAME, record)
    due = (verdict.level == "stop" or step % config.log_every == 0 or step == config.max_steps
           or verdict.level == "warn" and not watch.warned)
    if log is not None and due:
        log(record)
    watch.warned = watch.warned or verdict.level == "warn"


def _save(run: _Run, step: int) -> Path:
    """Save checkpoint `step` (main process), wait for it everywhere; the latest checkpoint."""
    if run.dist.main:
        save_checkpoint(run.out, step, run.model, run.processor, run.optimizer, run.scheduler,
                        run.scaler)
    run.dist.barrier()
    return latest_checkpoint(run.out)

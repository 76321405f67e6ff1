"""Our training loop: symmetric InfoNCE fine-tuning of an open_clip model, resumable to the exact step.

Contract of ``train(cfg)``:

- Loss: open_clip's ``ClipLoss`` (symmetric InfoNCE, learnable temperature ``logit_scale`` clamped to
  ``ln 100`` after each step, as open_clip does); across ranks features are gathered with gradients.
- AdamW with no weight decay on gains, biases, embeddings-as-vectors and ``logit_scale`` (open_clip's
  rule); linear warmup then cosine (or constant) per optimizer step; optional gradient clipping.
- Gradient accumulation caches the features of all ``accum_steps`` micro-batches without gradients,
  then re-runs each micro-batch with gradients against the cached rest: the gradient of one contrastive
  loss over the whole accumulated batch, not of ``accum_steps`` small ones.
- One run is ``max_steps`` optimizer steps, or ``epochs`` x (samples // global batch) steps; an epoch
  (a pass over the data) ends when a rank runs out of full batches.
- Every ``checkpoint_every`` steps and at the end a checkpoint (``rs5m.ml.training.checkpoint``) holds
  model, optimizer, scheduler, scaler, RNG and data position. A run killed and restarted with
  ``resume: auto`` continues at the step after the latest checkpoint, and with the same seed, world
  size and worker count finishes bit-identical to a run that was never interrupted.
- Rank 0 writes ``metrics.jsonl``, the checkpoints, ``loss.png`` and the exported final model.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from open_clip.loss import ClipLoss

from rs5m.config.train import TrainConfig
from rs5m.ml.models import load_clip
from rs5m.ml.training import checkpoint as ckpt
from rs5m.ml.training.data import TrainData, data_version
from rs5m.ml.training.export import export_final
from rs5m.ml.training.metrics import MetricsLog, plot_loss_curve, read_metrics, summarize
from rs5m.ml.training.runtime import Runtime, all_have, barrier, setup_runtime, teardown
from rs5m.ml.training.step import Stepper

log = logging.getLogger(__name__)
StepHook = Callable[[int, dict[str, Any]], None]


@dataclass
class TrainResult:
    """What a finished run produced."""

    output_dir: str
    steps: int
    files: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    data_version: str | None = None
    resumed_from: str | None = None
    new_steps: int | None = None  # steps trained by this call (a resume counts its own); None: unknown


class WarmupCosine:
    """LR multiplier per step: linear warmup from 0, then cosine to 0 (or constant) until ``total``."""

    def __init__(self, warmup: int, total: int, schedule: str) -> None:
        self.warmup, self.total, self.schedule = warmup, total, schedule

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.schedule == "const":
            return 1.0
        span = max(1, self.total - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(step - self.warmup, span) / span))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters split into decayed and not decayed (1-d, biases, norms, logit_scale)."""
    decay, keep = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        plain = p.ndim < 2 or "bias" in name or "ln" in name or "bn" in name or "logit_scale" in name
        (keep if plain else decay).append(p)
    return [{"params": keep, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def seed_everything(seed: int) -> None:
    """Seed torch, Python and NumPy generators of this process."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


class Trainer:
    """One run's model, data, optimizer and schedule; ``run`` trains to ``total_steps``."""

    def __init__(self, cfg: TrainConfig, rt: Runtime) -> None:
        self.cfg, self.rt = cfg, rt
        m = cfg.model
        model, _, tokenizer = load_clip(
            m.name, m.pretrained, m.checkpoint, quick_gelu=m.quick_gelu, init_seed=m.init_seed
        )
        self.peft_model = None
        if cfg.peft is not None:
            from rs5m.ml.training.peft import apply_lora

            self.peft_model = apply_lora(model, cfg.peft)
        from rs5m.ml.training.peft import parameter_counts

        self.params = parameter_counts(model)
        size = model.visual.image_size
        image_size = cfg.data.image_size or (size[0] if isinstance(size, tuple | list) else int(size))
        self.model = model.to(rt.device).train()
        if cfg.grad_checkpointing:
            self.model.set_grad_checkpointing(True)
        self.data = TrainData(cfg.data, cfg.batch_size, cfg.seed, image_size, m.image_norm, tokenizer)
        per_epoch = self.data.n_samples // cfg.global_batch(rt.world)
        self.total_steps = cfg.max_steps or cfg.epochs * per_epoch
        if self.total_steps < 1:
            raise ValueError(f"{self.data.n_samples} samples: fewer than one global batch")
        optim = cfg.optim
        self.optimizer = torch.optim.AdamW(
            param_groups(self.model, optim.weight_decay),
            lr=optim.lr,
            betas=(optim.beta1, optim.beta2),
            eps=optim.eps,
        )
        lam = WarmupCosine(optim.warmup_steps, self.total_steps, optim.schedule)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lam)
        loss = ClipLoss(local_loss=True, gather_with_grad=True, rank=rt.rank, world_size=rt.world)
        self.stepper = Stepper(self.model, self.optimizer, self.scheduler, loss, rt, cfg)
        self.step, self.epoch, self.data_state = 0, 0, None
        self.resumed_from: str | None = None
        self.start_step = 0

    def resume(self) -> None:
        """Restore the checkpoint named by ``cfg.resume`` (if any); otherwise seed a fresh run."""
        path = ckpt.find_resume(self.cfg.output_dir, self.cfg.resume)
        if path is None:
            seed_everything(self.cfg.seed + self.rt.rank)
            return
        state = ckpt.load_checkpoint(path)
        ckpt.check_compatible(state, self.rt.world, self.cfg.data.workers)
        self.stepper.raw_model.load_state_dict(state["model"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.stepper.load_scaler(state["scaler"])
        ckpt.set_rng_state(state["rng"][self.rt.rank])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.data_state = state["data"][self.rt.rank]
        self.resumed_from, self.start_step = str(path), self.step
        log.info("resumed from %s at step %d (epoch %d)", path, self.step, self.epoch)

    def save(self) -> None:
        """Write a checkpoint of the current step (every rank contributes RNG and data position)."""
        rngs = ckpt.gather_rng(self.rt)
        datas = ckpt.gather_data(self.rt, self.data_state)
        if self.rt.is_main:
            state = {
                "step": self.step,
                "epoch": self.epoch,
                "data": datas,
                "rng": rngs,
                "model": self.stepper.raw_model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.stepper.scaler_state(),
                "world_size": self.rt.world,
                "workers": self.cfg.data.workers,
                "config": self.cfg.model_dump(mode="json"),
            }
            ckpt.save_checkpoint(self.cfg.output_dir, state, self.cfg.keep_checkpoints)
        barrier(self.rt)

    def _next_step_batches(self, it: Any) -> list[Any] | None:
        micro = []
        for _ in range(self.cfg.accum_steps):
            batch = next(it, None)
            if not all_have(self.rt, batch is not None):
                return None
            micro.append(batch)
        return micro

    def run(self, on_step: StepHook | None = None) -> None:
        """Train from the current step to ``total_steps``, logging and checkpointing on the way."""
        metrics = MetricsLog(self.cfg.output_dir, self.step) if self.rt.is_main else None
        clock = (time.perf_counter(), self.step)
        while self.step < self.total_steps:
            fresh = self.data_state is None
            it = self.data.batches(self.epoch, self.data_state)
            progressed = False
            while self.step < self.total_steps and (micro := self._next_step_batches(it)) is not None:
                loss = self.stepper.step([(b[0], b[1]) for b in micro])
                self.step, self.data_state, progressed = self.step + 1, micro[-1][2], True
                clock = self._after_step(loss, metrics, clock, on_step)
            it.close()
            if self.step >= self.total_steps:
                break
            if fresh and not progressed:
                raise ValueError("an epoch produced no full optimizer step: batch too large for the data")
            self.epoch, self.data_state = self.epoch + 1, None
        if self.step % self.cfg.checkpoint_every:
            self.save()

    def _after_step(
        self,
        loss: torch.Tensor,
        metrics: MetricsLog | None,
        clock: tuple[float, int],
        on_step: StepHook | None,
    ) -> tuple[float, int]:
        row: dict[str, Any] = {}
        if self.step % self.cfg.log_every == 0 or self.step == self.total_steps:
            now = time.perf_counter()
            samples = (self.step - clock[1]) * self.cfg.global_batch(self.rt.world)
            row = {
                "step": self.step,
                "epoch": self.epoch,
                "loss": self.stepper.mean_loss(loss),
                "lr": self.optimizer.param_groups[0]["lr"],
                "samples_per_s": round(samples / max(now - clock[0], 1e-9), 3),
                "logit_scale": float(self.stepper.raw_model.logit_scale.exp().item()),
                "time": time.time(),
            }
            if metrics is not None:
                metrics.write(row)
                log.info("step %(step)d loss %(loss).4f lr %(lr).3g %(samples_per_s).1f samples/s", row)
            clock = (time.perf_counter(), self.step)
        if self.step % self.cfg.checkpoint_every == 0:
            self.save()
            clock = (time.perf_counter(), self.step)
        if on_step is not None:
            on_step(self.step, row)
        return clock

    def finish(self) -> TrainResult:
        """Export the final model and the loss curve (rank 0); return the run's summary."""
        result = TrainResult(self.cfg.output_dir, self.step, params=self.params)
        result.data_version, result.resumed_from = data_version(self.cfg.data), self.resumed_from
        result.new_steps = self.step - self.start_step
        rows = read_metrics(f"{self.cfg.output_dir}/metrics.jsonl")
        result.metrics = summarize(rows)
        if self.rt.is_main:
            info = {"steps": self.step, "data_version": result.data_version, "params": self.params}
            info["metrics"] = result.metrics
            result.files = export_final(self.stepper.raw_model, self.cfg, info, self.peft_model)
            if rows:
                title = f"{self.cfg.model.name} on {result.data_version or 'data'}"
                result.files["loss_curve"] = str(
                    plot_loss_curve(rows, f"{self.cfg.output_dir}/loss.png", title)
                )
        barrier(self.rt)
        return result


def train(cfg: TrainConfig, on_step: StepHook | None = None) -> TrainResult:
    """Run (or resume) one training run in this process; see the module docstring for the contract."""
    rt = setup_runtime(cfg.device)
    try:
        trainer = Trainer(cfg, rt)
        trainer.resume()
        trainer.run(on_step)
        return trainer.finish()
    finally:
        teardown(rt)

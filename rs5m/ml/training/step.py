"""One optimizer step: forward under autocast, contrastive loss, backward with accumulation, update.

With ``accum_steps`` k > 1 the step follows open_clip's feature-cache scheme (our own code): the k
micro-batches are first embedded without gradients; then each is embedded again with gradients and the
loss is taken over all k batches' features, the other k - 1 coming from the cache. Summed over the k
backward passes this is the gradient of one loss over the whole accumulated batch. ``logit_scale``
keeps its gradient in the last micro-batch only (it would otherwise be counted k times); under DDP the
first k - 1 backward passes skip the all-reduce (``no_sync``).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from rs5m.config.train import TrainConfig
from rs5m.ml.training.runtime import Runtime, autocast, make_scaler, mean_over_ranks

MAX_LOGIT_SCALE = math.log(100)
MicroBatch = tuple[torch.Tensor, torch.Tensor]


class Stepper:
    """Owns the (possibly DDP-wrapped) model, the loss and the GradScaler of a run."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        loss_fn: torch.nn.Module,
        rt: Runtime,
        cfg: TrainConfig,
    ) -> None:
        self.raw_model, self.optimizer, self.scheduler, self.loss_fn = model, optimizer, scheduler, loss_fn
        self.rt, self.precision = rt, cfg.precision
        self.clip_norm = cfg.optim.grad_clip_norm
        self.model: torch.nn.Module = model
        if rt.world > 1:
            ids = [rt.device.index] if rt.device.type == "cuda" else None
            self.model = DistributedDataParallel(model, device_ids=ids)
        self.scaler = make_scaler(rt, cfg.precision)
        self.params = [p for p in model.parameters() if p.requires_grad]

    def _to_device(self, batch: MicroBatch) -> MicroBatch:
        images, tokens = batch
        nb = self.rt.device.type == "cuda"
        return images.to(self.rt.device, non_blocking=nb), tokens.to(self.rt.device, non_blocking=nb)

    def _backward(self, loss: torch.Tensor) -> None:
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def _loss_single(self, batch: MicroBatch) -> torch.Tensor:
        with autocast(self.rt, self.precision):
            image_f, text_f, scale = self.model(*batch)
            loss = self.loss_fn(image_f, text_f, scale)
        self._backward(loss)
        return loss.detach()

    def _loss_accumulated(self, micro: list[MicroBatch]) -> torch.Tensor:
        with torch.no_grad(), autocast(self.rt, self.precision):
            cache = [self.model(*b)[:2] for b in micro]
        last = len(micro) - 1
        ddp = isinstance(self.model, DistributedDataParallel)
        first_loss = torch.zeros(())
        for j, batch in enumerate(micro):
            with self.model.no_sync() if ddp and j < last else contextlib.nullcontext():
                with autocast(self.rt, self.precision):
                    image_f, text_f, scale = self.model(*batch)
                    images = torch.cat([c[0] for c in cache[:j]] + [image_f] + [c[0] for c in cache[j + 1 :]])
                    texts = torch.cat([c[1] for c in cache[:j]] + [text_f] + [c[1] for c in cache[j + 1 :]])
                    loss = self.loss_fn(images, texts, scale if j == last else scale.detach())
                self._backward(loss)
            if j == 0:
                first_loss = loss.detach()
        return first_loss

    def step(self, micro: list[MicroBatch]) -> torch.Tensor:
        """Train on the micro-batches of one optimizer step; return the (detached) loss."""
        self.model.train()
        micro = [self._to_device(b) for b in micro]
        loss = self._loss_single(micro[0]) if len(micro) == 1 else self._loss_accumulated(micro)
        if self.clip_norm is not None:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.clip_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        with torch.no_grad():
            self.raw_model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        return loss

    def mean_loss(self, loss: torch.Tensor) -> float:
        """The step's loss averaged over ranks, as a float (synchronises the device)."""
        return mean_over_ranks(self.rt, float(loss.float().item()))

    def scaler_state(self) -> dict[str, Any] | None:
        """GradScaler state for a checkpoint (``None`` without fp16)."""
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_scaler(self, state: dict[str, Any] | None) -> None:
        """Restore the GradScaler from a checkpoint."""
        if self.scaler is not None and state is not None:
            self.scaler.load_state_dict(state)

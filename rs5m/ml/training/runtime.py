"""Process setup for training: device, torchrun-aware process group, mixed precision, collectives.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each process joins the default process group (NCCL on GPUs,
gloo on CPU) and uses ``cuda:LOCAL_RANK``; alone, it runs on ``device`` (``auto`` = CUDA when
present). Every collective here is a no-op with one process.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Where this process trains and how it talks to the others."""

    rank: int
    world: int
    local_rank: int
    device: torch.device
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, metrics and the final model."""
        return self.rank == 0


def setup_runtime(device: str = "auto") -> Runtime:
    """Join the torchrun process group when there is one; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = (torch.cuda.is_available() and device == "auto") or device.startswith("cuda")
    owns = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
        owns = True
    if world > 1 and cuda:
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    elif device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
    return Runtime(rank, world, local_rank, dev, owns)


def teardown(rt: Runtime) -> None:
    """Leave the process group if this module created it."""
    if rt.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def autocast_dtype(rt: Runtime, precision: str) -> torch.dtype | None:
    """Autocast dtype for ``precision``: fp16 for ``amp`` on CUDA (bf16 on CPU), bf16 for ``amp_bf16``."""
    if precision == "fp32":
        return None
    if precision == "amp" and rt.device.type == "cuda":
        return torch.float16
    return torch.bfloat16


def autocast(rt: Runtime, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The forward-pass autocast context for ``precision`` (a null context for fp32)."""
    dtype = autocast_dtype(rt, precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=rt.device.type, dtype=dtype)


def make_scaler(rt: Runtime, precision: str) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 autocast (``amp`` on CUDA); ``None`` otherwise."""
    if autocast_dtype(rt, precision) is torch.float16:
        return torch.amp.GradScaler("cuda")
    return None


def gather_objects(rt: Runtime, obj: Any) -> list[Any]:
    """``obj`` of every rank, in rank order (``[obj]`` alone)."""
    if rt.world == 1:
        return [obj]
    out: list[Any] = [None] * rt.world
    dist.all_gather_object(out, obj)
    return out


def all_have(rt: Runtime, have: bool) -> bool:
    """True when every rank has a batch: an epoch ends for all ranks when one runs dry."""
    if rt.world == 1:
        return have
    flag = torch.tensor([1 if have else 0], device=rt.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def mean_over_ranks(rt: Runtime, value: float) -> float:
    """Average of a scalar over ranks (for logging)."""
    if rt.world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=rt.device)
    dist.all_reduce(t)
    return float(t.item()) / rt.world


def barrier(rt: Runtime) -> None:
    """Wait for every rank."""
    if rt.world > 1:
        dist.barrier()

"""Training-state checkpoints: everything needed to continue a run at the exact step it stopped.

A checkpoint ``<output_dir>/checkpoints/step-NNNNNNNN.pt`` is one ``torch.save`` dict:
``step``, ``epoch``, ``data`` (each rank's data position, see ``rs5m.ml.training.data``), ``model`` (the
training model's state_dict, LoRA keys included), ``optimizer``, ``scheduler``, ``scaler`` (or
``None``), ``rng`` (each rank's torch / CUDA / Python / NumPy generator states), ``world_size``,
``workers`` and ``config``. It is written to a temporary name and renamed, so a run killed while
saving leaves the previous checkpoint as the latest; only the newest ``keep`` are kept.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rs5m.core.io import atomic_path
from rs5m.ml.training.runtime import Runtime, gather_objects

_NAME = re.compile(r"^step-(\d{8})\.pt$")


def checkpoint_dir(output_dir: str | os.PathLike[str]) -> Path:
    """Folder of the step checkpoints of a run."""
    return Path(output_dir) / "checkpoints"


def checkpoint_path(output_dir: str | os.PathLike[str], step: int) -> Path:
    """Path of the checkpoint taken after optimizer step ``step``."""
    return checkpoint_dir(output_dir) / f"step-{step:08d}.pt"


def list_checkpoints(output_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete step checkpoints of a run, oldest first."""
    folder = checkpoint_dir(output_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def find_resume(output_dir: str | os.PathLike[str], resume: str) -> Path | None:
    """The checkpoint to resume from: ``auto`` = latest in ``output_dir``, ``never`` = none, else a path."""
    if resume == "never":
        return None
    if resume == "auto":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f"resume checkpoint not found: {path}")
    return path


def rng_state() -> dict[str, Any]:
    """This process's generator states (torch CPU, every CUDA device, Python, NumPy)."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])


def save_checkpoint(output_dir: str | os.PathLike[str], state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` (must hold ``step``) atomically, then delete all but the newest ``keep``."""
    path = checkpoint_path(output_dir, int(state["step"]))
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    for old in list_checkpoints(output_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training checkpoint on CPU (our own files: full unpickling of RNG states is needed)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for truncated/garbled files
        raise ValueError(f"{path}: cannot read training checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or "step" not in state or "optimizer" not in state:
        raise ValueError(f"{path}: not a training checkpoint (a plain state_dict? use model.checkpoint)")
    return state


def check_compatible(state: dict[str, Any], world_size: int, workers: int) -> None:
    """Refuse a resume whose data positions cannot be replayed: world size and worker count must match."""
    if state["world_size"] != world_size:
        raise ValueError(f"checkpoint was taken with {state['world_size']} ranks, this run has {world_size}")
    if state["workers"] != workers:
        raise ValueError(f"checkpoint was taken with data.workers={state['workers']}, this run has {workers}")


def gather_rng(rt: Runtime) -> list[dict[str, Any]]:
    """Every rank's generator states, in rank order."""
    return gather_objects(rt, rng_state())


def gather_data(rt: Runtime, data_state: dict[str, Any] | None) -> list[dict[str, Any] | None]:
    """Every rank's data position, in rank order."""
    return gather_objects(rt, data_state)

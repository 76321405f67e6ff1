"""GeoRSCLIP training: config and presets, resumable data, our loop, LoRA, export, open_clip_train wrapper.

- ``TrainConfig`` / ``load_train_config`` / ``PRESETS`` (``rs5m.config.train``): the run's settings.
- ``train`` (``rs5m.ml.training.loop``): train or resume in this process (one rank under torchrun).
- ``rs5m.ml.training.launch.launch``: run a config in-process, under torchrun on several GPUs, or through
  ``open_clip_train`` (``engine: open_clip_train``); always ends with the exported model.

Heavy modules (torch, open_clip, peft) load on first use of the names below.
"""

from __future__ import annotations

import importlib
from typing import Any

from rs5m.config.train import PRESETS, TrainConfig, load_train_config

__all__ = ["PRESETS", "TrainConfig", "TrainResult", "load_train_config", "train"]

_LAZY = {
    "train": "rs5m.ml.training.loop",
    "TrainResult": "rs5m.ml.training.loop",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

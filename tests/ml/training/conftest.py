"""Fixtures of the training tests: tiny colour-coded shards in both layouts and a tiny-model config."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from rs5m.config import PackageConfig
from rs5m.config.train import TrainConfig
from rs5m.shards import Sample, write_manifest, write_shards

COLOURS = {
    "red": (200, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 60, 200),
    "yellow": (220, 210, 50),
    "white": (235, 235, 235),
    "black": (20, 20, 20),
    "purple": (130, 50, 160),
    "orange": (240, 140, 30),
}
N_SAMPLES, PER_SHARD = 64, 16


def colour_samples(n: int = N_SAMPLES) -> list[Sample]:
    """``n`` 48 px JPEGs whose dominant colour is named in the caption (learnable in a few steps)."""
    rng = np.random.default_rng(0)
    names = list(COLOURS)
    out = []
    for i in range(n):
        name = names[i % len(names)]
        arr = np.asarray(COLOURS[name], np.float32) + rng.normal(0, 12, (48, 48, 3))
        buf = io.BytesIO()
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
        caption = f"an aerial image of a {name} field"
        out.append(Sample(f"tiny-{i:04d}", "laion2b", caption, buf.getvalue(), "jpg"))
    return out


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four 16-sample train shards per layout (``open_clip`` with a manifest of version tiny-v1, ``rs5m``)."""
    root = tmp_path_factory.mktemp("train-shards")
    cfg = PackageConfig(max_samples_per_shard=PER_SHARD, fsync=False)
    out = {}
    for layout in ("open_clip", "rs5m"):
        write_shards(colour_samples(), root / layout, "pub11", "train", layout, cfg)
        write_manifest(root / layout, "tiny-v1")
        out[layout] = root / layout
    return out


@pytest.fixture
def make_cfg(tiny_shards: dict[str, Path], tmp_path: Path) -> Callable[..., TrainConfig]:
    """TrainConfig factory: rs5m-tiny, batch 8, 20 steps on CPU; keyword arguments override (dotted ok)."""

    def make(run: str = "run", **over: Any) -> TrainConfig:
        raw: dict[str, Any] = {
            "model": {"name": "rs5m-tiny"},
            "data": {"shards": str(tiny_shards["open_clip"]), "workers": 0, "shuffle_buffer": 32},
            "batch_size": 8,
            "max_steps": 20,
            "optim": {"lr": 2e-3, "weight_decay": 0.1, "warmup_steps": 2},
            "log_every": 1,
            "checkpoint_every": 5,
            "device": "cpu",
            "output_dir": str(tmp_path / run),
        }
        for key, val in over.items():
            node = raw
            *parents, leaf = key.split("__")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = val
        return TrainConfig.model_validate(raw)

    return make

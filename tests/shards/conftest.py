"""Fixtures for the shard tests: small generated images and samples, real WHU-RS19 JPEGs when present."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rs5m.shards import Sample

FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}


def encode(size: tuple[int, int] = (64, 48), ext: str = "jpg", mode: str = "RGB", seed: int = 0) -> bytes:
    """A small smooth-plus-noise image of ``size`` (w, h) encoded as ``ext``."""
    rng = np.random.default_rng(seed)
    w, h = size
    low = Image.fromarray(rng.integers(0, 256, (max(h // 8, 2), max(w // 8, 2), 3), dtype=np.uint8))
    arr = np.asarray(low.resize((w, h), Image.BICUBIC), np.int16) + rng.integers(-15, 15, (h, w, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, FORMATS[ext], **({"quality": 90} if ext == "jpg" else {}))
    return buf.getvalue()


def make_samples(
    n: int, exts: tuple[str, ...] = ("jpg", "png", "webp"), prefix: str = "laion2b"
) -> list[Sample]:
    """``n`` samples with distinct uids, captions and images, cycling through ``exts``."""
    return [
        Sample(
            uid=f"{prefix}-{i:05d}",
            source=prefix,
            caption=f"an aerial view of field {i} ✓",
            image=encode((40 + i % 7, 30 + i % 5), exts[i % len(exts)], seed=i),
            ext=exts[i % len(exts)],
            meta={"scores": {"s_vlm": 0.25 + i / 1000}, "caption_source": "original"},
        )
        for i in range(n)
    ]


@pytest.fixture
def samples() -> Callable[..., list[Sample]]:
    """Factory for generated samples (see ``make_samples``)."""
    return make_samples


@pytest.fixture(scope="session")
def whu_jpegs(shared_data: Path) -> list[bytes]:
    """12 real WHU-RS19 600x600 JPEGs from different classes; skips when ../shared/data is absent."""
    files = sorted((shared_data / "whu-rs19").glob("*/*.jpg"))
    if not files:
        pytest.skip("no WHU-RS19 images in the shared data folder")
    return [f.read_bytes() for f in files[::80][:12]]


@pytest.fixture
def encoder() -> Callable[..., bytes]:
    """The ``encode`` image factory."""
    return encode

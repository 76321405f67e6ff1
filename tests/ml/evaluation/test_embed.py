"""Embedding: DataLoader order with workers, the on-disk cache and its fingerprints."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rs5m.ml.evaluation.embed import (
    EmbeddingCache,
    ImagePathDataset,
    encode_images,
    files_fingerprint,
    model_fingerprint,
    texts_fingerprint,
)


def _images(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_workers_keep_dataset_order(tmp_path: Path, tiny_embedder) -> None:
    ds = ImagePathDataset(_images(tmp_path, 7), tiny_embedder.preprocess)
    serial = encode_images(tiny_embedder.model, ds, batch_size=3, workers=0)
    parallel = encode_images(tiny_embedder.model, ds, batch_size=3, workers=2)
    assert serial.shape == (7, 64)
    np.testing.assert_allclose(np.linalg.norm(serial, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(serial, parallel, rtol=1e-5, atol=1e-6)


def test_cache_computes_once_and_repairs_damaged_entries(tmp_path: Path) -> None:
    calls = []

    def compute() -> np.ndarray:
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    cache = EmbeddingCache(tmp_path, "model-fp")
    first = cache.fetch("img-x", "data-fp", compute)
    again = EmbeddingCache(tmp_path, "model-fp").fetch("img-x", "data-fp", compute)
    assert len(calls) == 1 and np.array_equal(first, again)
    entry = tmp_path / "model-fp" / "img-x-data-fp.npy"
    entry.write_bytes(b"garbage")
    EmbeddingCache(tmp_path, "model-fp").fetch("img-x", "data-fp", compute)
    assert len(calls) == 2 and np.array_equal(np.load(entry), first)
    EmbeddingCache(None, "model-fp").fetch("img-x", "data-fp", compute)
    assert len(calls) == 3


def test_model_fingerprint_follows_weights_and_preprocess(tiny_embedder) -> None:
    model, pre = tiny_embedder.model, tiny_embedder.preprocess
    base = model_fingerprint(model, pre)
    assert model_fingerprint(model, pre) == base
    assert model_fingerprint(model, pre, precision="amp") != base
    with torch.no_grad():
        model.logit_scale.add_(1.0)
        changed = model_fingerprint(model, pre)
        model.logit_scale.sub_(1.0)
    assert changed != base and model_fingerprint(model, pre) == base


def test_data_fingerprints(tmp_path: Path) -> None:
    paths = _images(tmp_path, 2)
    fp = files_fingerprint(paths)
    assert files_fingerprint(list(reversed(paths))) != fp
    os.utime(paths[0], ns=(1, 1))
    assert files_fingerprint(paths) != fp
    assert texts_fingerprint(["a", "b"]) != texts_fingerprint(["a", "b "])
    with pytest.raises(FileNotFoundError):
        files_fingerprint([tmp_path / "missing.png"])

"""Batched image/text embedding (torch DataLoader with workers) and an on-disk embedding cache.

Cache entries live at ``<cache>/<model fingerprint>/<kind>-<data fingerprint>.npy``. The model
fingerprint hashes the actual weights, the architecture and the preprocess, so a random-init model
with another seed or a retrained checkpoint never reuses stale vectors; the data fingerprint hashes
file paths, sizes and mtimes (images) or the texts themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from rs5m.core.io import atomic_path

CACHE_FORMAT = "1"  # bump when what an entry means changes


class ImagePathDataset(Dataset):
    """Images read from ``paths`` with PIL and passed through ``preprocess``."""

    def __init__(self, paths: Sequence[str | os.PathLike[str]], preprocess: Callable[[Image.Image], Any]):
        self.paths = [str(p) for p in paths]
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        with Image.open(self.paths[index]) as image:
            return self.preprocess(image)


def _digest(parts: Any) -> str:
    return hashlib.blake2b(
        json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=10
    ).hexdigest()


def model_fingerprint(model: torch.nn.Module, preprocess: Any, precision: str = "fp32") -> str:
    """Hash of the weights, the module structure (activation kinds) and the preprocess."""
    h = hashlib.blake2b(digest_size=10)
    h.update(f"{CACHE_FORMAT}|{precision}|{model!r}|{preprocess!r}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def files_fingerprint(paths: Sequence[str | os.PathLike[str]], extra: Any = None) -> str:
    """Hash of the ordered file list with each file's size and mtime (raises if a file is missing)."""
    rows = []
    for p in paths:
        st = os.stat(p)
        rows.append([str(p), st.st_size, st.st_mtime_ns])
    return _digest([CACHE_FORMAT, rows, extra])


def texts_fingerprint(texts: Sequence[str], extra: Any = None) -> str:
    """Hash of the ordered texts."""
    return _digest([CACHE_FORMAT, list(texts), extra])


class EmbeddingCache:
    """``.npy`` arrays by key under ``root``; ``root=None`` disables caching. Writes are atomic."""

    def __init__(self, root: str | os.PathLike[str] | None, model_fp: str):
        self.root = Path(root) / model_fp if root is not None else None
        self.hits = 0
        self.misses = 0

    def fetch(self, kind: str, data_fp: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Return the cached array for ``(kind, data_fp)``, computing and storing it on a miss."""
        path = self.root / f"{kind}-{data_fp}.npy" if self.root is not None else None
        if path is not None and path.is_file():
            try:
                arr = np.load(path, allow_pickle=False)
                self.hits += 1
                return arr
            except (OSError, ValueError):
                pass  # a damaged entry is recomputed and replaced
        self.misses += 1
        arr = np.ascontiguousarray(compute(), dtype=np.float32)
        if path is not None:
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
        return arr


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision != "amp":
        return contextlib.nullcontext()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _model_device_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    param = next(model.parameters())
    return param.device, param.dtype


def iter_image_batches(
    dataset: Dataset, batch_size: int, workers: int, pin_memory: bool = False
) -> Iterator[torch.Tensor]:
    """Batches in dataset order; ``workers`` > 0 decodes in background processes."""
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=pin_memory
    )
    yield from loader


@torch.inference_mode()
def encode_images(
    model: torch.nn.Module, dataset: Dataset, batch_size: int = 64, workers: int = 2, precision: str = "fp32"
) -> np.ndarray:
    """L2-normalised image embeddings ``(len(dataset), dim)`` float32, in dataset order."""
    device, dtype = _model_device_dtype(model)
    out = []
    for batch in iter_image_batches(dataset, batch_size, workers, pin_memory=device.type == "cuda"):
        with _autocast(device, precision):
            feats = model.encode_image(batch.to(device=device, dtype=dtype, non_blocking=True))
        out.append(F.normalize(feats.float(), dim=-1).cpu())
    if not out:
        raise ValueError("no images to embed")
    return torch.cat(out).numpy()


@torch.inference_mode()
def encode_texts(
    model: torch.nn.Module,
    tokenizer: Callable[..., torch.Tensor],
    texts: Sequence[str],
    batch_size: int = 256,
    precision: str = "fp32",
) -> np.ndarray:
    """Raw (not normalised) text embeddings ``(len(texts), dim)`` float32, in order."""
    device, _ = _model_device_dtype(model)
    out = []
    for start in range(0, len(texts), batch_size):
        tokens = tokenizer(list(texts[start : start + batch_size])).to(device)
        with _autocast(device, precision):
            out.append(model.encode_text(tokens).float().cpu())
    if not out:
        raise ValueError("no texts to embed")
    return torch.cat(out).numpy()


class Embedder:
    """A loaded model with its preprocess, tokenizer, batch settings and cache: the one thing tasks share."""

    def __init__(
        self,
        model: torch.nn.Module,
        preprocess: Callable[[Image.Image], torch.Tensor],
        tokenizer: Callable[..., torch.Tensor],
        cache_root: str | os.PathLike[str] | None = None,
        batch_size: int = 64,
        workers: int = 2,
        precision: str = "fp32",
    ):
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer
        self.batch_size, self.workers, self.precision = batch_size, workers, precision
        self.fingerprint = model_fingerprint(model, preprocess, precision)
        self.cache = EmbeddingCache(cache_root, self.fingerprint)

    def image_files(self, kind: str, paths: Sequence[str | os.PathLike[str]]) -> np.ndarray:
        """Normalised embeddings of image files, cached by file list."""
        return self.dataset(kind, ImagePathDataset(paths, self.preprocess), files_fingerprint(paths))

    def dataset(self, kind: str, dataset: Dataset, data_fp: str) -> np.ndarray:
        """Normalised embeddings of any dataset of preprocessed tensors, cached under ``data_fp``."""
        return self.cache.fetch(
            f"img-{kind}",
            data_fp,
            lambda: encode_images(self.model, dataset, self.batch_size, self.workers, self.precision),
        )

    def texts(self, kind: str, texts: Sequence[str]) -> np.ndarray:
        """Raw text embeddings, cached by the texts."""
        return self.cache.fetch(
            f"txt-{kind}",
            texts_fingerprint(texts),
            lambda: encode_texts(self.model, self.tokenizer, texts, max(self.batch_size, 64), self.precision),
        )

"""Image embeddings for dedup when the scoring stage's are not reused (``DedupConfig.embeddings`` is a model
spec): any open_clip image tower, unit-norm rows, in batches, on the GPU when there is one.

Contract: ``ImageEmbedder(spec).embed(images)`` maps PIL images (or encoded bytes) to a float32
``[n, dim]`` array of unit rows in input order; an image that cannot be decoded gets a zero row, which
``embedding.find_semantic_duplicates`` never links. ``write_part`` stores a partition the way the scoring
stage does (``<part>.npy`` float16 and ``<part>.uids.npy``), so ``embedding.scoring_parts`` reads either.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rs5m.config.stages import DedupEmbeddingModel
from rs5m.core.io import atomic_path


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class ImageEmbedder:
    """An open_clip model loaded once (weights from ``pretrained``/``checkpoint``; random with neither)."""

    def __init__(self, spec: DedupEmbeddingModel) -> None:
        from rs5m.ml.models import load_clip

        self.spec, self.device = spec, _device(spec.device)
        self.model, self.preprocess, _ = load_clip(
            spec.model_name, spec.pretrained, spec.checkpoint, device=str(self.device)
        )

    def _tensor(self, image: Image.Image | bytes) -> torch.Tensor | None:
        try:
            img = Image.open(io.BytesIO(image)) if isinstance(image, bytes | bytearray) else image
            return self.preprocess(img)
        except Exception:  # undecodable bytes: a zero row, never linked
            return None

    @torch.inference_mode()
    def embed(self, images: Iterable[Image.Image | bytes]) -> np.ndarray:
        """Unit-norm float32 rows, one per image (zero for an undecodable one)."""
        items = list(images)
        out: np.ndarray | None = None
        for s in range(0, len(items), self.spec.batch_size):
            tensors = [self._tensor(im) for im in items[s : s + self.spec.batch_size]]
            ok = [i for i, t in enumerate(tensors) if t is not None]
            if not ok:
                continue
            batch = torch.stack([tensors[i] for i in ok]).to(self.device)
            feats = F.normalize(self.model.encode_image(batch).float(), dim=-1).cpu().numpy()
            if out is None:
                out = np.zeros((len(items), feats.shape[1]), dtype=np.float32)
            out[s + np.asarray(ok)] = feats
        return out if out is not None else np.zeros((len(items), 0), dtype=np.float32)


def write_part(folder: Path, part: str, uids: Sequence[str], vectors: np.ndarray) -> Path:
    """Write ``<folder>/<part>.npy`` (float16) and ``<part>.uids.npy`` atomically; return the vectors path."""
    if len(uids) != len(vectors):
        raise ValueError(f"{len(uids)} uids but {len(vectors)} vectors")
    path = Path(folder) / f"{part}.npy"
    for target, array in (
        (path, vectors.astype(np.float16)),
        (path.with_suffix(".uids.npy"), np.array(uids, str)),
    ):
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
    return path

"""Cross-modal retrieval on RSITMD / RSICD style splits (reference §11.2, CLIP_benchmark recall).

Images are the unique file names, sorted (``np.unique``); captions keep file order and point to their
image. ``scores = T @ I^T`` on unit vectors. T2I R@k: share of captions whose image is in their top k.
I2T R@k: share of images with *at least one* of their captions in their top k. Values are
``float32(hits / n) * 100`` like the reference's ``.float().mean() * 100``; mR is the mean of the six
unrounded values; all rounded to 2 decimals. Ties: among equal scores the lower index ranks first
(stable sort) - ``torch.topk`` leaves that order undefined. ``k`` larger than the candidate count is
capped at that count (the reference would raise).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rs5m.config.evaluate import RetrievalDataset
from rs5m.ml.evaluation.embed import Embedder

RECALL_KS = (1, 5, 10)


@dataclass(frozen=True)
class RetrievalSplit:
    """``images``: sorted unique file names; ``captions[i]`` describes ``images[caption_image[i]]``."""

    images: list[str]
    captions: list[str]
    caption_image: np.ndarray


def _group(filenames: list[str], captions: list[str]) -> RetrievalSplit:
    if not filenames:
        raise ValueError("retrieval split has no rows")
    images = sorted(set(filenames))  # == np.unique order
    pos = {name: i for i, name in enumerate(images)}
    order = sorted(range(len(filenames)), key=lambda i: pos[filenames[i]])  # stable: file order per image
    return RetrievalSplit(
        images=images,
        captions=[captions[i] for i in order],
        caption_image=np.asarray([pos[filenames[i]] for i in order], dtype=np.int64),
    )


def read_csv_split(path: str | os.PathLike[str], encoding: str | None = None) -> RetrievalSplit:
    """Read a ``filename,title`` CSV (GeoRSCLIP's rsitmd_test.csv / rsicd_test.csv, rsicd in gb18030)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"retrieval csv not found: {p}")
    df = pd.read_csv(p, sep=",", encoding=encoding, dtype=str, keep_default_na=False)
    missing = {"filename", "title"} - set(df.columns)
    if missing:
        raise ValueError(f"{p}: missing columns {sorted(missing)} (need filename,title)")
    return _group(df["filename"].tolist(), df["title"].tolist())


def read_txt_split(
    captions_file: str | os.PathLike[str], filenames_file: str | os.PathLike[str], encoding: str | None = None
) -> RetrievalSplit:
    """Read the line-aligned pair ``<split>_caps.txt`` / ``<split>_filename.txt`` (AMFMN/SeLo release)."""
    texts = []
    for f in (captions_file, filenames_file):
        if not Path(f).is_file():
            raise FileNotFoundError(f"retrieval file not found: {f}")
        lines = Path(f).read_text(encoding=encoding or "utf-8").splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        texts.append(lines)
    caps, names = texts
    if len(caps) != len(names):
        raise ValueError(f"{captions_file} has {len(caps)} lines but {filenames_file} has {len(names)}")
    return _group([n.strip() for n in names], [c.strip() for c in caps])


def load_split(ds: RetrievalDataset) -> RetrievalSplit:
    """The split named by a config entry (csv or txt pair)."""
    if ds.csv is not None:
        return read_csv_split(ds.csv, ds.encoding)
    assert ds.captions_file is not None and ds.filenames_file is not None
    return read_txt_split(ds.captions_file, ds.filenames_file, ds.encoding)


def hits_at_k(scores: np.ndarray, positives: np.ndarray, k: int) -> np.ndarray:
    """Per row of ``scores``: does any positive column rank in the top ``k``? (stable ties, k capped)."""
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(positives, order, axis=1).any(axis=1)


def _percent(hits: np.ndarray) -> float:
    return float(np.float32(hits.sum()) / np.float32(len(hits))) * 100


def retrieval_metrics(
    text_emb: np.ndarray, image_emb: np.ndarray, caption_image: np.ndarray, ks: tuple[int, ...] = RECALL_KS
) -> dict[str, float]:
    """R@k both ways and mR from unit-norm embeddings; keys ``i2t_R@k``, ``t2i_R@k``, ``mean_recall``."""
    scores = text_emb.astype(np.float32) @ image_emb.astype(np.float32).T
    positives = np.zeros(scores.shape, dtype=bool)
    positives[np.arange(len(scores)), caption_image] = True
    raw: dict[str, float] = {}
    for k in ks:
        raw[f"i2t_R@{k}"] = _percent(hits_at_k(scores.T, positives.T, k))
    for k in ks:
        raw[f"t2i_R@{k}"] = _percent(hits_at_k(scores, positives, k))
    raw["mean_recall"] = float(np.mean(list(raw.values())))
    return {key: round(val, 2) for key, val in raw.items()}


def evaluate_retrieval(embedder: Embedder, ds: RetrievalDataset) -> dict[str, Any]:
    """Run one retrieval split; returns ``{"task", "dataset", "n_images", "n_captions", "metrics"}``."""
    split = load_split(ds)
    paths = [os.path.join(ds.images_dir, name) for name in split.images]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"{len(missing)} images of {ds.name} not found, e.g. {missing[0]}")
    image_emb = embedder.image_files(f"retrieval-{ds.name}", paths)
    raw_text = embedder.texts(f"retrieval-{ds.name}", split.captions)
    text_emb = raw_text / np.linalg.norm(raw_text, axis=1, keepdims=True)
    metrics = retrieval_metrics(text_emb, image_emb, split.caption_image)
    return {
        "task": "retrieval",
        "dataset": ds.name,
        "n_images": len(split.images),
        "n_captions": len(split.captions),
        "metrics": metrics,
    }

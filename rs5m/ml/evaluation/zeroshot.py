"""Zero-shot scene classification on ImageFolder datasets (reference §11.1).

GeoRSCLIP protocol: per class, encode the 105 prompts, average the *raw* text embeddings, then
L2-normalise; logits = 100 * normalize(image) @ W; top-1 in %, 2 decimals. The ``clip_benchmark``
protocol normalises each prompt embedding before averaging (then normalises again). Ties in the
logits go to the lowest class index (``argmax``), the only case the reference leaves undefined.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rs5m.config.evaluate import ZeroShotDataset, ZeroShotProtocol
from rs5m.ml.evaluation.embed import Embedder
from rs5m.ml.evaluation.templates import TEMPLATES, class_names, fill

# torchvision's ImageFolder extensions
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class ImageFolderIndex:
    """Sorted class folders and every image below them, with integer labels (ImageFolder order)."""

    classes: list[str]
    paths: list[str]
    labels: np.ndarray


def scan_image_folder(root: str | os.PathLike[str], max_per_class: int | None = None) -> ImageFolderIndex:
    """Index ``root/<class>/**/<image>`` like torchvision's ImageFolder (files in ``root`` are ignored).

    ``max_per_class`` keeps the first N images (sorted) of each class. Raises ``FileNotFoundError``
    when ``root`` is missing and ``ValueError`` when it has no classes or a class has no images.
    """
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"zero-shot dataset folder not found: {base}")
    classes = sorted(e.name for e in os.scandir(base) if e.is_dir())
    if not classes:
        raise ValueError(f"no class folders in {base}")
    paths: list[str] = []
    labels: list[int] = []
    empty: list[str] = []
    for label, cls in enumerate(classes):
        found = []
        for folder, _dirs, files in sorted(os.walk(base / cls, followlinks=True)):
            found += [os.path.join(folder, f) for f in sorted(files) if f.lower().endswith(IMG_EXTENSIONS)]
        found = found[:max_per_class] if max_per_class else found
        if not found:
            empty.append(cls)
        paths += found
        labels += [label] * len(found)
    if empty:
        raise ValueError(f"class folders without images in {base}: {empty[:5]}")
    return ImageFolderIndex(classes, paths, np.asarray(labels, dtype=np.int64))


def zeroshot_classifier(
    class_text_features: np.ndarray, protocol: ZeroShotProtocol = "georsclip"
) -> torch.Tensor:
    """``(C, T, D)`` raw prompt embeddings -> ``(D, C)`` unit-norm class weights."""
    feats = torch.as_tensor(class_text_features, dtype=torch.float32)
    if protocol == "georsclip":
        weights = F.normalize(feats.mean(dim=1), dim=-1)
    elif protocol == "clip_benchmark":
        weights = F.normalize(F.normalize(feats, dim=-1).mean(dim=1), dim=-1)
    else:
        raise ValueError(f"unknown zero-shot protocol {protocol!r}")
    return weights.T.contiguous()


def zeroshot_logits(image_features: np.ndarray, classifier: torch.Tensor) -> torch.Tensor:
    """``100 * normalize(image) @ W`` as in the reference."""
    img = F.normalize(torch.as_tensor(image_features, dtype=torch.float32), dim=-1)
    return 100.0 * img @ classifier


def classification_metrics(logits: torch.Tensor, labels: np.ndarray) -> dict[str, float]:
    """Top-1 accuracy and mean per-class recall (over classes present in ``labels``), in %, 2 decimals."""
    n = len(labels)
    if n == 0:
        raise ValueError("no samples to score")
    pred = torch.argmax(logits, dim=1).numpy()
    correct = pred == labels
    recalls = [correct[labels == c].mean() for c in np.unique(labels)]
    return {
        "top1": round(float(correct.sum()) * 100 / n, 2),
        "mean_per_class_recall": round(float(np.mean(recalls)) * 100, 2),
    }


def evaluate_zeroshot(embedder: Embedder, ds: ZeroShotDataset) -> dict[str, Any]:
    """Run one zero-shot dataset; returns ``{"task", "dataset", "n_images", "n_classes", "metrics"}``."""
    index = scan_image_folder(ds.root, ds.max_per_class)
    names = class_names(index.classes)
    prompts = [fill(t, name) for name in names for t in TEMPLATES]
    text = embedder.texts("zeroshot-prompts", prompts).reshape(len(names), len(TEMPLATES), -1)
    classifier = zeroshot_classifier(text, ds.protocol)
    images = embedder.image_files(f"zeroshot-{ds.name}", index.paths)
    metrics = classification_metrics(zeroshot_logits(images, classifier), index.labels)
    return {
        "task": "zeroshot",
        "dataset": ds.name,
        "protocol": ds.protocol,
        "n_images": len(index.paths),
        "n_classes": len(names),
        "metrics": metrics,
    }

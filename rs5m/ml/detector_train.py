"""Training of the RS detector (reference §5) and the generated images of the demo.

Contract:
- ``train_detector(pos_dir, neg_dir, out_dir, cfg)`` lists the images of two folders (recursively),
  optionally subsamples the larger class to the smaller's size, splits each class 7:1:2 (seeded,
  so every split has the same class ratio), trains a linear head on a frozen backbone (features
  extracted once) or fine-tunes backbone and head, keeps the epoch with the best val accuracy and
  writes ``detector.pt`` (config, head, backbone weights when they are not reproducible from a
  tag or file), ``metrics.json`` and ``split.json``; returns the metrics (val and test accuracy).
  ``rs5m.ml.detector.load_detector`` reads it back.
- ``write_generated_images`` writes the sample world's aerial / ordinary look-alikes (demo, tests).
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from rs5m.config import DetectorConfig
from rs5m.core.io import atomic_path, write_json
from rs5m.ml.detector import (
    CHECKPOINT_FORMAT,
    IMAGE_EXTS,
    Backbone,
    Detector,
    Head,
    autocast,
    build_backbone,
    resolve_device,
)
from rs5m.shards.preprocess import ClipPreprocess


class _Files(Dataset):
    def __init__(self, items: list[tuple[str, int]], size: int) -> None:
        self.items, self.decoder = items, ClipPreprocess(size)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[i]
        return self.decoder.decode(Path(path).read_bytes()), label


def list_images(folder: str | os.PathLike[str]) -> list[str]:
    """Image files under ``folder`` (recursive, by extension), sorted; ``FileNotFoundError`` if none."""
    files = sorted(str(p) for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images under {folder}")
    return files


def split_balanced(pos: list[str], neg: list[str], cfg: DetectorConfig) -> dict[str, list[tuple[str, int]]]:
    """Seeded per-class split by ``cfg.split`` (each split keeps the class ratio); labels 1 = RS."""
    rng = np.random.default_rng(cfg.seed)
    classes = [[pos[i] for i in rng.permutation(len(pos))], [neg[i] for i in rng.permutation(len(neg))]]
    n = min(map(len, classes)) if cfg.balance_classes else None
    if cfg.max_per_class is not None:
        n = min(n or cfg.max_per_class, cfg.max_per_class)
    total = sum(cfg.split)
    out: dict[str, list[tuple[str, int]]] = {"train": [], "val": [], "test": []}
    for label, files in zip((1, 0), classes, strict=True):
        files = files[:n] if n is not None else files
        n_train = round(len(files) * cfg.split[0] / total)
        n_val = round(len(files) * cfg.split[1] / total)
        out["train"] += [(f, label) for f in files[:n_train]]
        out["val"] += [(f, label) for f in files[n_train : n_train + n_val]]
        out["test"] += [(f, label) for f in files[n_train + n_val :]]
    if not all(out.values()):
        raise ValueError(f"too few images for a {cfg.split} split: {[len(v) for v in out.values()]}")
    return out


def _loader(items: list[tuple[str, int]], size: int, cfg: DetectorConfig, shuffle: bool) -> DataLoader:
    gen = torch.Generator().manual_seed(cfg.seed)
    return DataLoader(
        _Files(items, size), cfg.batch_size, shuffle=shuffle, num_workers=cfg.num_workers, generator=gen
    )


@torch.no_grad()  # not inference_mode: the head trains on these features afterwards
def _features(
    backbone: Backbone, loader: DataLoader, cfg: DetectorConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    device = next(backbone.parameters()).device
    feats, labels = [], []
    for batch, label in loader:
        with autocast(device, cfg.precision):
            feats.append(backbone(backbone.normalise(batch.to(device))).float().cpu())
        labels.append(label)
    return torch.cat(feats), torch.cat(labels).float()


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float(((logits > 0).float().cpu() == labels.cpu()).float().mean())


def _train_head(model: Detector, split: dict[str, list[tuple[str, int]]], cfg: DetectorConfig) -> dict:
    feats = {
        k: _features(model.backbone, _loader(v, model.backbone.size, cfg, False), cfg)
        for k, v in split.items()
    }
    x, y = feats["train"]
    opt = torch.optim.AdamW(model.head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    head = model.head.cpu()
    best = (-1.0, 0, copy.deepcopy(head.state_dict()))
    for epoch in range(cfg.epochs):
        for idx in torch.randperm(len(y), generator=gen).split(cfg.batch_size):
            loss = F.binary_cross_entropy_with_logits(head(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = _accuracy(head(feats["val"][0]), feats["val"][1])
        if acc > best[0]:
            best = (acc, epoch, copy.deepcopy(head.state_dict()))
    head.load_state_dict(best[2])
    model.head.to(model.device)
    with torch.no_grad():
        test = _accuracy(head(feats["test"][0]), feats["test"][1])
    return {"val_accuracy": best[0], "test_accuracy": test, "best_epoch": best[1]}


def _evaluate(model: Detector, loader: DataLoader) -> float:
    model.eval()
    with torch.no_grad():
        pairs = [(model.logits_uint8(b).float().cpu(), y.float()) for b, y in loader]
    return _accuracy(torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs]))


def _finetune(model: Detector, split: dict[str, list[tuple[str, int]]], cfg: DetectorConfig) -> dict:
    size = model.backbone.size
    train, val = _loader(split["train"], size, cfg, True), _loader(split["val"], size, cfg, False)
    groups = [
        {"params": model.backbone.parameters(), "lr": cfg.backbone_lr},
        {"params": model.head.parameters(), "lr": cfg.lr},
    ]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    best = (-1.0, 0, copy.deepcopy(model.state_dict()))
    for epoch in range(cfg.epochs):
        model.train()
        for batch, label in train:
            loss = F.binary_cross_entropy_with_logits(
                model.logits_uint8(batch).float(), label.float().to(model.device)
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = _evaluate(model, val)
        if acc > best[0]:
            best = (acc, epoch, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    test = _evaluate(model, _loader(split["test"], size, cfg, False))
    return {"val_accuracy": best[0], "test_accuracy": test, "best_epoch": best[1]}


def _keeps_backbone(cfg: DetectorConfig) -> bool:
    return cfg.finetune or (cfg.pretrained is None and cfg.checkpoint is None)


def train_detector(
    pos_dir: str | os.PathLike[str],
    neg_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    cfg: DetectorConfig,
) -> dict[str, Any]:
    """Train; keep the best-val epoch; write detector.pt, metrics.json, split.json; return the metrics."""
    start = time.perf_counter()
    split = split_balanced(list_images(pos_dir), list_images(neg_dir), cfg)
    device = resolve_device(cfg.device)
    backbone = build_backbone(cfg)
    model = Detector(backbone, Head(backbone.dim), cfg).to(device)
    model.backbone.requires_grad_(cfg.finetune)
    model.eval()
    result = _finetune(model, split, cfg) if cfg.finetune else _train_head(model, split, cfg)
    out = Path(out_dir)
    metrics = {
        **result,
        "n": {k: len(v) for k, v in split.items()},
        "n_rs": {k: sum(label for _, label in v) for k, v in split.items()},
        "backbone": cfg.backbone,
        "model_name": cfg.model_name,
        "pretrained": cfg.pretrained,
        "finetune": cfg.finetune,
        "device": str(device),
        "seconds": round(time.perf_counter() - start, 2),
        "checkpoint": str(out / "detector.pt"),
    }
    state = {
        "format": CHECKPOINT_FORMAT,
        "config": cfg.model_dump(mode="json"),
        "head": {k: v.cpu() for k, v in model.head.state_dict().items()},
        "backbone": {k: v.cpu() for k, v in model.backbone.state_dict().items()}
        if _keeps_backbone(cfg)
        else None,
    }
    with atomic_path(out / "detector.pt") as tmp:
        torch.save(state, tmp)
    write_json(out / "split.json", split)
    write_json(out / "metrics.json", metrics)
    return metrics


def write_generated_images(
    out_dir: str | os.PathLike[str],
    n: int,
    look: Literal["aerial", "ordinary"],
    seed: int = 0,
    size: int = 256,
) -> int:
    """Write ``n`` generated JPEGs of the sample world's ``look`` (kept when already there); returns ``n``."""
    from rs5m.sample.images import aerial_image, encode, ordinary_image

    draw = aerial_image if look == "aerial" else ordinary_image
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = out / f"{look}_{i:05d}.jpg"
        if not path.exists():
            with atomic_path(path) as tmp:
                tmp.write_bytes(encode(draw(np.random.default_rng([seed, i]), size, size), "jpg"))
    return n

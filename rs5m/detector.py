"""RS detector (reference §5): a binary RS / non-RS image classifier, trained and used for ``c_rs``.

Contract:
- ``train_detector(pos_dir, neg_dir, out_dir, cfg)`` lists the images of two folders (recursively),
  optionally subsamples the larger class to the smaller's size, splits each class 7:1:2 (seeded,
  so every split has the same class ratio), trains a linear head on a frozen backbone (features
  extracted once) or fine-tunes backbone and head, keeps the epoch with the best val accuracy and
  writes ``detector.pt`` (config, head, backbone weights when they are not reproducible from a
  tag or file), ``metrics.json`` and ``split.json``; returns the metrics (val and test accuracy).
- ``load_detector(path)`` rebuilds it; ``Detector.predict_proba(images)`` returns P(RS) per image;
  ``Detector.proba_uint8(batch)`` does the same for uint8 batches already decoded by the scorer.
- Backbones: open_clip (any name, ``pretrained`` tag or ``checkpoint`` file; the image tower only)
  or timm (``model_name``, ``pretrained`` = a weight tag downloaded by timm, or ``checkpoint``).
  Images are resized (shorter side, bicubic) and centre-cropped to the backbone's size.
"""

from __future__ import annotations

import copy
import io
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.utils.data import DataLoader, Dataset

from rs5m.fsio import atomic_path, write_json
from rs5m.shards.preprocess import ClipPreprocess

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
CHECKPOINT_FORMAT = 1


class DetectorConfig(BaseModel):
    """Backbone and training knobs of the RS detector (RS5M: ViTAE fine-tuned; here any open_clip/timm)."""

    model_config = ConfigDict(extra="forbid")

    backbone: Literal["open_clip", "timm"] = "open_clip"
    model_name: str = "ViT-B-16"
    pretrained: str | None = None
    checkpoint: str | None = None
    finetune: bool = False
    epochs: int = Field(default=20, ge=1, le=1000)
    lr: float = Field(default=1e-3, gt=0, le=1.0)
    backbone_lr: float = Field(default=1e-5, gt=0, le=1.0)
    weight_decay: float = Field(default=1e-4, ge=0, le=1.0)
    batch_size: int = Field(default=64, ge=1, le=4096)
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)
    balance_classes: bool = True
    max_per_class: int | None = Field(default=None, ge=3)
    seed: int = 0
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "bf16"
    num_workers: int = Field(default=2, ge=0, le=64)


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> the first CUDA device when there is one, else the CPU."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """Autocast context for ``precision`` ("fp32" gives a disabled one) on ``device``."""
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=precision != "fp32")


class Head(nn.Module):
    """Linear logit over unit-norm features, scaled by sqrt(dim) so each feature is ~unit size."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = math.sqrt(dim)
        self.linear = nn.Linear(dim, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(F.normalize(features.float(), dim=-1) * self.scale).squeeze(-1)


class Backbone(nn.Module):
    """An image tower with its input geometry: ``forward(normalised float batch) -> features``."""

    def __init__(self, tower: nn.Module, size: int, mean: Sequence[float], std: Sequence[float], dim: int):
        super().__init__()
        self.tower, self.size, self.dim = tower, size, dim
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), False)

    def normalise(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 [B,3,H,W] -> float input at ``size`` (resized on device when H or W differ)."""
        x = batch.float().div_(255)
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", antialias=True).clamp_(0, 1)
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tower(x)


def _square(size: Any) -> int:
    return int(size[0]) if isinstance(size, tuple | list) else int(size)


def build_backbone(cfg: DetectorConfig, weights_saved: bool = False) -> Backbone:
    """The configured backbone; ``weights_saved`` skips tag/file loading (a checkpoint fills it)."""
    pretrained = None if weights_saved else cfg.pretrained
    checkpoint = None if weights_saved else cfg.checkpoint
    if cfg.backbone == "open_clip":
        import open_clip

        from rs5m.models import canonical_model_name, load_clip

        model, _, _ = load_clip(
            cfg.model_name, pretrained=pretrained, checkpoint=checkpoint, init_seed=cfg.seed
        )
        pre = open_clip.get_model_preprocess_cfg(model)
        dim = int(open_clip.get_model_config(canonical_model_name(cfg.model_name))["embed_dim"])
        return Backbone(model.visual, _square(pre["size"]), pre["mean"], pre["std"], dim)
    import timm

    name = f"{cfg.model_name}.{pretrained}" if pretrained else cfg.model_name
    overlay = {"file": checkpoint} if checkpoint else None
    torch.manual_seed(cfg.seed)
    tower = timm.create_model(
        name, pretrained=bool(pretrained or checkpoint), num_classes=0, pretrained_cfg_overlay=overlay
    )
    data = timm.data.resolve_data_config({}, model=tower)
    return Backbone(tower, _square(data["input_size"][1:]), data["mean"], data["std"], tower.num_features)


class Detector(nn.Module):
    """Backbone + head; P(RS) = sigmoid(head(backbone(x)))."""

    def __init__(self, backbone: Backbone, head: Head, cfg: DetectorConfig) -> None:
        super().__init__()
        self.backbone, self.head, self.cfg = backbone, head, cfg
        self.decoder = ClipPreprocess(backbone.size)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def logits_uint8(self, batch: torch.Tensor, precision: str | None = None) -> torch.Tensor:
        """Logits of a uint8 [B,3,H,W] batch (moved to the detector's device)."""
        device = self.device
        with autocast(device, precision or self.cfg.precision):
            return self.head(self.backbone(self.backbone.normalise(batch.to(device, non_blocking=True))))

    @torch.inference_mode()
    def proba_uint8(self, batch: torch.Tensor, precision: str | None = None) -> torch.Tensor:
        """P(RS) float32 [B] on the detector's device for a uint8 batch."""
        return torch.sigmoid(self.logits_uint8(batch, precision).float())

    def decode(self, image: Image.Image | bytes | str | os.PathLike[str]) -> torch.Tensor:
        """One image (PIL, encoded bytes or a path) -> uint8 [3,S,S] (exact CLIP-style geometry)."""
        if isinstance(image, str | os.PathLike):
            image = Path(image).read_bytes()
        if isinstance(image, bytes):
            return self.decoder.decode(image)
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="PNG")
        return self.decoder.decode(buf.getvalue())

    def predict_proba(self, images: Sequence[Image.Image | bytes | str | os.PathLike[str]]) -> np.ndarray:
        """P(RS) per image, float32, in order."""
        out = [
            self.proba_uint8(torch.stack([self.decode(im) for im in images[i : i + self.cfg.batch_size]]))
            for i in range(0, len(images), self.cfg.batch_size)
        ]
        return torch.cat(out).cpu().numpy() if out else np.zeros(0, np.float32)


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


def load_detector(path: str | os.PathLike[str], device: str = "auto") -> Detector:
    """Rebuild a trained detector from ``detector.pt`` (or its folder), in eval mode on ``device``."""
    p = Path(path)
    p = p / "detector.pt" if p.is_dir() else p
    state = torch.load(p, map_location="cpu", weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{p}: not an rs5m detector checkpoint (format {state.get('format')!r})")
    cfg = DetectorConfig.model_validate(state["config"])
    backbone = build_backbone(cfg, weights_saved=state["backbone"] is not None)
    if state["backbone"] is not None:
        backbone.load_state_dict(state["backbone"], strict=True)
    head = Head(backbone.dim)
    head.load_state_dict(state["head"], strict=True)
    return Detector(backbone, head, cfg).to(resolve_device(device)).eval()


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

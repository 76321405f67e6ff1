"""RS detector (reference §5): a binary RS / non-RS image classifier, used for ``c_rs``.

Contract:
- ``load_detector(path)`` rebuilds a detector written by ``rs5m.ml.detector_train.train_detector``;
  ``Detector.predict_proba(images)`` returns P(RS) per image; ``Detector.proba_uint8(batch)`` does the
  same for uint8 batches already decoded by the scorer.
- Backbones: open_clip (any name, ``pretrained`` tag or ``checkpoint`` file; the image tower only)
  or timm (``model_name``, ``pretrained`` = a weight tag downloaded by timm, or ``checkpoint``).
  Images are resized (shorter side, bicubic) and centre-cropped to the backbone's size.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from rs5m.config import DetectorConfig
from rs5m.shards.preprocess import ClipPreprocess

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
CHECKPOINT_FORMAT = 1


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

        from rs5m.ml.models import canonical_model_name, load_clip

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

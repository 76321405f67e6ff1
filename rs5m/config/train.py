"""Typed configuration of one GeoRSCLIP training run (``rs5m train --config FILE``, flow ``train-georsclip``).

YAML layout (relative paths resolve against the YAML file's folder; every key is optional)::

    preset: paper                  # paper | ret2: recipe defaults that the keys below override
    model: {name: ViT-B-32, pretrained: openai}       # or checkpoint: ckpt/RS5M_ViT-B-32.pt
    data:
      shards: ../data/versions/sample/package/open_clip   # dir, glob, brace pattern, '::'-joined
      split: train                 # with a directory: only its *-train-*.tar shards
      version: sample              # recorded in the exported model's JSON
      csv: []                      # or RSICD/RSITMD style [{csv, images_dir}] for the retrieval fine-tune
    batch_size: 700
    epochs: 20
    optim: {lr: 1.0e-6, weight_decay: 0.5, warmup_steps: 0, grad_clip_norm: null}
    precision: amp                 # fp32 | amp (fp16 + GradScaler) | amp_bf16
    peft: {method: lora, r: 8, alpha: 16}              # absent = full fine-tune
    checkpoint_every: 1000
    output_dir: ../data/train-runs/sample

The presets follow reference §9: ``paper`` (§9.1: AdamW lr 1e-6, wd 0.5, cosine, AMP, batch 700,
20 epochs, OpenAI ViT-B-32 init) and ``ret2`` (§9.3: lr 5e-6, wd 0.5, batch 600, 7 epochs, 100 warmup
steps, gradient clipping at 50; initialise from ``RS5M_ViT-B-32.pt``).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rs5m.config.models import NORM_PRESETS

Precision = Literal["fp32", "amp", "amp_bf16"]
Engine = Literal["ours", "open_clip_train"]

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "model": {"name": "ViT-B-32", "pretrained": "openai"},
        "batch_size": 700,
        "epochs": 20,
        "precision": "amp",
        "optim": {"lr": 1e-6, "weight_decay": 0.5, "schedule": "cosine", "warmup_steps": 0},
    },
    "ret2": {
        "model": {"name": "ViT-B-32"},
        "batch_size": 600,
        "epochs": 7,
        "precision": "amp",
        "optim": {
            "lr": 5e-6,
            "weight_decay": 0.5,
            "schedule": "cosine",
            "warmup_steps": 100,
            "grad_clip_norm": 50.0,
        },
    },
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ModelInit(_Model):
    """Initial weights: an open_clip name plus a pretrained tag and/or a local (GeoRSCLIP) state_dict."""

    name: str = "ViT-B-32"
    pretrained: str | None = None
    checkpoint: str | None = None
    quick_gelu: bool | None = None
    image_norm: str = "clip"
    init_seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> ModelInit:
        if self.image_norm not in NORM_PRESETS:
            raise ValueError(f"image_norm must be one of {sorted(NORM_PRESETS)}, got {self.image_norm!r}")
        return self


class CsvSource(_Model):
    """An RSICD/RSITMD-style ``filename,title`` CSV with its image folder (reference §9.3)."""

    csv: str
    images_dir: str
    encoding: str | None = None
    filename_col: str = "filename"
    caption_col: str = "title"


class DataConfig(_Model):
    """Training data: webdataset shards (any layout, incl. the released RS5M tars) or CSV sources."""

    shards: str | None = None
    split: str | None = "train"
    layout: Literal["auto", "rs5m", "open_clip", "legacy"] = "auto"
    csv: list[CsvSource] = Field(default_factory=list)
    version: str | None = None
    num_samples: int | None = Field(default=None, ge=1)
    shuffle_buffer: int = Field(default=10_000, ge=0)
    workers: int = Field(default=4, ge=0, le=256)
    image_size: int | None = Field(default=None, ge=8, le=2048)

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if (self.shards is None) == (not self.csv):
            raise ValueError("data: give either shards or csv (not both, not neither)")
        return self


class OptimConfig(_Model):
    """AdamW + schedule. ``grad_clip_norm=None`` disables clipping; warmup is linear from 0."""

    lr: float = Field(default=1e-6, gt=0)
    weight_decay: float = Field(default=0.5, ge=0)
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.98, ge=0, lt=1)
    eps: float = Field(default=1e-6, gt=0)
    schedule: Literal["cosine", "const"] = "cosine"
    warmup_steps: int = Field(default=0, ge=0)
    grad_clip_norm: float | None = Field(default=None, gt=0)


class PeftConfig(_Model):
    """LoRA on both towers' attention (in_proj + out_proj) and MLP (c_fc, c_proj); base weights frozen."""

    method: Literal["lora"] = "lora"
    r: int = Field(default=8, ge=1, le=1024)
    alpha: float = Field(default=16.0, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    targets: list[Literal["attn", "c_fc", "c_proj"]] = Field(
        default_factory=lambda: ["attn", "c_fc", "c_proj"], min_length=1
    )
    train_logit_scale: bool = False


class TrainConfig(_Model):
    """Everything one training run needs; checkpoints, logs and the final model go to ``output_dir``."""

    preset: Literal["paper", "ret2"] | None = None
    engine: Engine = "ours"
    model: ModelInit = Field(default_factory=ModelInit)
    data: DataConfig
    optim: OptimConfig = Field(default_factory=OptimConfig)
    peft: PeftConfig | None = None
    batch_size: int = Field(default=256, ge=1, le=65536, description="per-GPU micro-batch")
    accum_steps: int = Field(default=1, ge=1, le=1024)
    epochs: int = Field(default=1, ge=1, le=10_000)
    max_steps: int | None = Field(default=None, ge=1, description="stop after this many optimizer steps")
    precision: Precision = "fp32"
    grad_checkpointing: bool = False
    checkpoint_every: int = Field(default=1000, ge=1)
    keep_checkpoints: int = Field(default=2, ge=1)
    log_every: int = Field(default=10, ge=1)
    seed: int = 0
    device: str = "auto"
    output_dir: str = "train-runs/run"
    resume: str = Field(default="auto", description="auto (latest in output_dir) | never | a checkpoint path")

    @model_validator(mode="after")
    def _engine_fits(self) -> TrainConfig:
        if self.engine == "open_clip_train":
            if self.peft is not None or self.data.csv or self.data.layout in ("rs5m", "legacy"):
                raise ValueError("engine open_clip_train: full fine-tune on open_clip-layout shards only")
        return self

    def global_batch(self, world_size: int = 1) -> int:
        """Samples per optimizer step over all ranks."""
        return self.batch_size * self.accum_steps * world_size


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, val in over.items():
        out[key] = _merge(out[key], val) if isinstance(val, dict) and isinstance(out.get(key), dict) else val
    return out


def with_preset(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` laid over its ``preset``'s defaults (nested keys merged); unknown presets raise."""
    name = raw.get("preset")
    if name is None:
        return raw
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return _merge(PRESETS[name], raw)


def _resolve_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    def fix(d: dict[str, Any], keys: tuple[str, ...]) -> None:
        for key in keys:
            val = d.get(key)
            if isinstance(val, str) and val and not os.path.isabs(val) and "://" not in val:
                d[key] = "::".join(os.path.normpath(base / part) for part in val.split("::"))

    fix(raw, ("output_dir",))
    if isinstance(raw.get("model"), dict):
        fix(raw["model"], ("checkpoint",))
    data = raw.get("data")
    if isinstance(data, dict):
        fix(data, ("shards",))
        for src in data.get("csv") or []:
            if isinstance(src, dict):
                fix(src, ("csv", "images_dir"))
    if raw.get("resume") not in (None, "auto", "never"):
        fix(raw, ("resume",))
    return raw


def set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``raw["a"]["b"] = value`` for ``dotted="a.b"``, creating sections on the way."""
    *parents, leaf = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {dotted!r}: {part!r} is not a section")
    node[leaf] = value


def load_train_config(path: str | os.PathLike[str], overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Load a YAML train config; ``overrides`` (dotted keys, ``None`` skipped) are applied after the preset.

    Override paths are taken as given (relative to the working directory). Raises ``FileNotFoundError``
    or ``ValueError`` with a one-line message.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read config {p}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"config {p} must be a mapping, got {type(raw).__name__}")
    raw = with_preset(_resolve_paths(raw, p.resolve().parent))
    for key, val in (overrides or {}).items():
        if val is not None:
            set_dotted(raw, key, val)
    try:
        return TrainConfig.model_validate(raw)
    except ValueError as exc:
        msg = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:500]
        raise ValueError(f"invalid config {p}: {msg}") from exc

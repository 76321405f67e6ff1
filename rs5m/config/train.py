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

import hashlib
import json
import os
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from rs5m.config.loader import ConfigModel, ConfigPath, PathStr, deep_merge, load_config
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


Shards = Annotated[str, ConfigPath(split="::")]  # folder, glob, brace pattern or '::'-joined list; URLs kept
Resume = Annotated[str, ConfigPath(keep=("auto", "never"))]
# Fields that say where a run goes or how it is watched, not what it trains (left out of the run hash).
NOT_HASHED = {"output_dir", "resume", "device", "log_every", "checkpoint_every", "keep_checkpoints"}


class ModelInit(ConfigModel):
    """Initial weights: an open_clip name plus a pretrained tag and/or a local (GeoRSCLIP) state_dict."""

    name: str = "ViT-B-32"
    pretrained: str | None = None
    checkpoint: PathStr | None = None
    quick_gelu: bool | None = None
    image_norm: str = "clip"
    init_seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> ModelInit:
        if self.image_norm not in NORM_PRESETS:
            raise ValueError(f"image_norm must be one of {sorted(NORM_PRESETS)}, got {self.image_norm!r}")
        return self


class CsvSource(ConfigModel):
    """An RSICD/RSITMD-style ``filename,title`` CSV with its image folder (reference §9.3)."""

    csv: PathStr
    images_dir: PathStr
    encoding: str | None = None
    filename_col: str = "filename"
    caption_col: str = "title"


class DataConfig(ConfigModel):
    """Training data: webdataset shards (any layout, incl. the released RS5M tars) or CSV sources."""

    shards: Shards | None = None
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


class OptimConfig(ConfigModel):
    """AdamW + schedule. ``grad_clip_norm=None`` disables clipping; warmup is linear from 0."""

    lr: float = Field(default=1e-6, gt=0)
    weight_decay: float = Field(default=0.5, ge=0)
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.98, ge=0, lt=1)
    eps: float = Field(default=1e-6, gt=0)
    schedule: Literal["cosine", "const"] = "cosine"
    warmup_steps: int = Field(default=0, ge=0)
    grad_clip_norm: float | None = Field(default=None, gt=0)


class PeftConfig(ConfigModel):
    """LoRA on both towers' attention (in_proj + out_proj) and MLP (c_fc, c_proj); base weights frozen."""

    method: Literal["lora"] = "lora"
    r: int = Field(default=8, ge=1, le=1024)
    alpha: float = Field(default=16.0, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    targets: list[Literal["attn", "c_fc", "c_proj"]] = Field(
        default_factory=lambda: ["attn", "c_fc", "c_proj"], min_length=1
    )
    train_logit_scale: bool = False


class TrainConfig(ConfigModel):
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
    output_dir: PathStr = "train-runs/run"
    resume: Resume = Field(
        default="auto", description="auto (latest in output_dir) | never | a checkpoint path"
    )

    @model_validator(mode="after")
    def _engine_fits(self) -> TrainConfig:
        if self.engine == "open_clip_train":
            if self.peft is not None or self.data.csv or self.data.layout in ("rs5m", "legacy"):
                raise ValueError("engine open_clip_train: full fine-tune on open_clip-layout shards only")
        return self

    def global_batch(self, world_size: int = 1) -> int:
        """Samples per optimizer step over all ranks."""
        return self.batch_size * self.accum_steps * world_size

    def config_hash(self) -> str:
        """Hash of what decides the trained weights, data location left out (``data.shards``,
        ``data.version``: the run's data is identified by its own fingerprint) and so are the fields of
        ``NOT_HASHED``; paths as the config file writes them."""
        payload = self.portable_dump(exclude=NOT_HASHED)
        payload["data"] = {k: v for k, v in payload["data"].items() if k not in ("shards", "version")}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def with_preset(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` laid over its ``preset``'s defaults (nested keys merged); unknown presets raise."""
    name = raw.get("preset")
    if name is None:
        return raw
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return deep_merge(PRESETS[name], raw)


def load_train_config(path: str | os.PathLike[str], overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Load a YAML train config (``rs5m.config.loader``: paths relative to the YAML's folder); ``overrides``
    (dotted keys, ``None`` skipped, paths relative to the working directory) apply after the preset.

    Raises ``FileNotFoundError`` or ``ValueError`` with a one-line message.
    """
    return load_config(path, TrainConfig, overrides, prepare=with_preset)

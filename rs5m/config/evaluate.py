"""Typed configuration of one evaluation run (``rs5m evaluate --config FILE``, flow ``evaluate-georsclip``).

YAML layout (relative paths resolve against the YAML file's folder)::

    model: {name: ViT-B-32, checkpoint: ckpt/RS5M_ViT-B-32.pt, label: GeoRSCLIP-ViTB32 (ours)}
    zeroshot:
      - {name: EuroSAT, root: rs5m_test_data/eurosat-rgb/2750}
    retrieval:
      - {name: rsitmd, csv: rs5m_test_data/rsitmd/rsitmd_test.csv, images_dir: rs5m_test_data/rsitmd/images}
      - {name: rsicd, csv: .../rsicd_test.csv, images_dir: .../RSICD_images, encoding: gb18030}
    selo:
      - {name: AIR-SLT, annotations: .../AIR-SLT/annotations/anno.json, images_dir: .../AIR-SLT/imgs}
    batch_size: 500
    workers: 8
    device: cuda
    output_dir: eval-results
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rs5m.config.models import NORM_PRESETS, PRECISIONS

ZeroShotProtocol = Literal["georsclip", "clip_benchmark"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ModelSpec(_Model):
    """Which weights to evaluate: an open_clip name plus a pretrained tag and/or a local state_dict."""

    name: str = "ViT-B-32"
    pretrained: str | None = None
    checkpoint: str | None = None
    quick_gelu: bool | None = None
    precision: str = "fp32"
    image_norm: str = "clip"
    init_seed: int = 0
    label: str | None = Field(default=None, description="row name in the results table")

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.image_norm not in NORM_PRESETS:
            raise ValueError(f"image_norm must be one of {sorted(NORM_PRESETS)}, got {self.image_norm!r}")
        return self

    def row_label(self) -> str:
        """Label of this model's row: ``label`` or ``<name> [pretrained] [checkpoint file name]``."""
        if self.label:
            return self.label
        parts = [self.name, self.pretrained or "", Path(self.checkpoint).name if self.checkpoint else ""]
        return " ".join(p for p in parts if p) + " (ours)"


class ZeroShotDataset(_Model):
    """An ImageFolder classification set; ``name`` labels its table column (``<name>_acc``)."""

    name: str
    root: str
    protocol: ZeroShotProtocol = "georsclip"
    max_per_class: int | None = Field(default=None, ge=1)


class RetrievalDataset(_Model):
    """A retrieval split: ``csv`` (``filename,title``) or txt pair ``captions_file``/``filenames_file``."""

    name: str
    images_dir: str
    csv: str | None = None
    captions_file: str | None = None
    filenames_file: str | None = None
    encoding: str | None = None

    @model_validator(mode="after")
    def _one_format(self) -> RetrievalDataset:
        txt = self.captions_file is not None or self.filenames_file is not None
        if (self.csv is None) == (not txt):
            raise ValueError(f"retrieval {self.name!r}: give either csv or captions_file + filenames_file")
        if txt and (self.captions_file is None or self.filenames_file is None):
            raise ValueError(f"retrieval {self.name!r}: captions_file and filenames_file go together")
        return self


class SeloDataset(_Model):
    """AIR-SLT style semantic localisation: ``anno.json`` plus the folder of large images."""

    name: str = "AIR-SLT"
    annotations: str
    images_dir: str
    scales: list[int] = Field(default_factory=lambda: [256, 512, 768], min_length=1)
    max_queries: int | None = Field(default=None, ge=1)
    save_maps: bool = True


class EvalConfig(_Model):
    """Everything one evaluation run needs; results go to ``output_dir``, embeddings to ``cache_dir``."""

    model: ModelSpec = Field(default_factory=ModelSpec)
    zeroshot: list[ZeroShotDataset] = Field(default_factory=list)
    retrieval: list[RetrievalDataset] = Field(default_factory=list)
    selo: list[SeloDataset] = Field(default_factory=list)
    batch_size: int = Field(default=64, ge=1, le=8192)
    workers: int = Field(default=2, ge=0, le=128)
    device: str = "cpu"
    output_dir: str = "eval-results"
    cache_dir: str | None = None
    use_cache: bool = True
    compare_published: bool = True

    @model_validator(mode="after")
    def _some_task(self) -> EvalConfig:
        if not (self.zeroshot or self.retrieval or self.selo):
            raise ValueError("nothing to evaluate: give at least one zeroshot, retrieval or selo dataset")
        names = [d.name for d in [*self.zeroshot, *self.retrieval, *self.selo]]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"dataset names must be unique, repeated: {dup}")
        return self

    def resolved_cache_dir(self) -> Path:
        """Embedding cache folder (``cache_dir`` or ``<output_dir>/cache``)."""
        return Path(self.cache_dir) if self.cache_dir else Path(self.output_dir) / "cache"


_PATH_KEYS = ("root", "csv", "captions_file", "filenames_file", "images_dir", "annotations", "checkpoint")


def _resolve(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    def fix(d: dict[str, Any]) -> None:
        for key in _PATH_KEYS:
            val = d.get(key)
            if isinstance(val, str) and not os.path.isabs(val):
                d[key] = os.path.normpath(base / val)

    for section in ("zeroshot", "retrieval", "selo"):
        for item in raw.get(section) or []:
            if isinstance(item, dict):
                fix(item)
    if isinstance(raw.get("model"), dict):
        fix(raw["model"])
    for key in ("output_dir", "cache_dir"):
        val = raw.get(key)
        if isinstance(val, str) and not os.path.isabs(val):
            raw[key] = os.path.normpath(base / val)
    return raw


MODEL_OVERRIDES = ("name", "pretrained", "checkpoint", "precision", "label", "quick_gelu")


def load_eval_config(path: str | os.PathLike[str], **overrides: Any) -> EvalConfig:
    """Load a YAML eval config; ``overrides`` (not ``None``) replace top-level keys.

    Keys ``model_name``/``model_pretrained``/``model_checkpoint``/... override ``model.*``. Override
    paths are taken as given (relative to the working directory). Raises ``FileNotFoundError`` or
    ``ValueError`` with a one-line message.
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
    raw = _resolve(raw, p.resolve().parent)
    for key, val in overrides.items():
        if val is None:
            continue
        if key.startswith("model_") and key[len("model_") :] in MODEL_OVERRIDES:
            raw.setdefault("model", {})[key[len("model_") :]] = val
        else:
            raw[key] = val
    try:
        return EvalConfig.model_validate(raw)
    except ValueError as exc:
        raise ValueError(f"invalid config {p}: {_one_line(exc)}") from exc


def _one_line(exc: Exception) -> str:
    return " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:500]

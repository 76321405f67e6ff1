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

from pydantic import Field, model_validator

from rs5m.config.loader import ConfigModel, PathStr, load_config
from rs5m.config.models import NORM_PRESETS, PRECISIONS

ZeroShotProtocol = Literal["georsclip", "clip_benchmark"]


class ModelSpec(ConfigModel):
    """Which weights to evaluate: an open_clip name plus a pretrained tag and/or a local state_dict."""

    name: str = "ViT-B-32"
    pretrained: str | None = None
    checkpoint: PathStr | None = None
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


class ZeroShotDataset(ConfigModel):
    """An ImageFolder classification set; ``name`` labels its table column (``<name>_acc``)."""

    name: str
    root: PathStr
    protocol: ZeroShotProtocol = "georsclip"
    max_per_class: int | None = Field(default=None, ge=1)


class RetrievalDataset(ConfigModel):
    """A retrieval split: ``csv`` (``filename,title``) or txt pair ``captions_file``/``filenames_file``."""

    name: str
    images_dir: PathStr
    csv: PathStr | None = None
    captions_file: PathStr | None = None
    filenames_file: PathStr | None = None
    encoding: str | None = None

    @model_validator(mode="after")
    def _one_format(self) -> RetrievalDataset:
        txt = self.captions_file is not None or self.filenames_file is not None
        if (self.csv is None) == (not txt):
            raise ValueError(f"retrieval {self.name!r}: give either csv or captions_file + filenames_file")
        if txt and (self.captions_file is None or self.filenames_file is None):
            raise ValueError(f"retrieval {self.name!r}: captions_file and filenames_file go together")
        return self


class SeloDataset(ConfigModel):
    """AIR-SLT style semantic localisation: ``anno.json`` plus the folder of large images."""

    name: str = "AIR-SLT"
    annotations: PathStr
    images_dir: PathStr
    scales: list[int] = Field(default_factory=lambda: [256, 512, 768], min_length=1)
    max_queries: int | None = Field(default=None, ge=1)
    save_maps: bool = True


class EvalConfig(ConfigModel):
    """Everything one evaluation run needs; results go to ``output_dir``, embeddings to ``cache_dir``."""

    model: ModelSpec = Field(default_factory=ModelSpec)
    zeroshot: list[ZeroShotDataset] = Field(default_factory=list)
    retrieval: list[RetrievalDataset] = Field(default_factory=list)
    selo: list[SeloDataset] = Field(default_factory=list)
    batch_size: int = Field(default=64, ge=1, le=8192)
    workers: int = Field(default=2, ge=0, le=128)
    device: str = "cpu"
    output_dir: PathStr = "eval-results"
    cache_dir: PathStr | None = None
    use_cache: bool = True
    compare_published: bool = True
    demo_data: PathStr | None = Field(
        default=None,
        description="write the generated demo datasets (`rs5m evaluate --demo`) into this folder first "
        "when they are missing: sample runs work from a fresh clone",
    )

    @model_validator(mode="after")
    def _some_task(self) -> EvalConfig:
        if not (self.zeroshot or self.retrieval or self.selo):
            raise ValueError("nothing to evaluate: give at least one zeroshot, retrieval or selo dataset")
        names = [d.name for d in [*self.zeroshot, *self.retrieval, *self.selo]]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"dataset names must be unique, repeated: {dup}")
        return self

    def missing_paths(self) -> list[str]:
        """The dataset files and folders this config names that do not exist (model files not included)."""
        paths = [d.root for d in self.zeroshot]
        for r in self.retrieval:
            paths += [p for p in (r.images_dir, r.csv, r.captions_file, r.filenames_file) if p]
        paths += [p for s in self.selo for p in (s.annotations, s.images_dir)]
        return [p for p in paths if not Path(p).exists()]

    def resolved_cache_dir(self) -> Path:
        """Embedding cache folder (``cache_dir`` or ``<output_dir>/cache``)."""
        return Path(self.cache_dir) if self.cache_dir else Path(self.output_dir) / "cache"


MODEL_OVERRIDES = ("name", "pretrained", "checkpoint", "precision", "label", "quick_gelu", "image_norm")


def load_eval_config(path: str | os.PathLike[str], **overrides: Any) -> EvalConfig:
    """Load a YAML eval config (``rs5m.config.loader``: paths relative to the YAML's folder); ``overrides``
    (not ``None``) replace top-level keys, ``model_<key>`` the model's (``model_checkpoint``).

    Override paths are relative to the working directory. Raises ``FileNotFoundError`` or ``ValueError``
    with a one-line message.
    """
    over = {}
    for key, val in overrides.items():
        field = key.removeprefix("model_")
        over[f"model.{field}" if key.startswith("model_") and field in MODEL_OVERRIDES else key] = val
    return load_config(path, EvalConfig, over)

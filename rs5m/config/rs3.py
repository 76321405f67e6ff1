"""RS3 configuration (pydantic): dataset roots, captioner, rankers, selection rule, PUB11 meta-captions.

Defaults are the paper's (reference §7.2): BLIP-2 OPT-6.7B in fp16, 20 nucleus samples (top-p 0.95,
top-k 50, max length 50), keep 10 by CLIP ViT-H/14 then 5 by CLIP RN50x64, 12 rotations. The sample
profile (``deployments/rs3-sample.yaml``) swaps in tiny random models; nothing else changes.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import Field, model_validator

from rs5m.config.loader import ConfigModel, ConfigPath, PathStr, load_config
from rs5m.core.schema import StageName

TINY_BLIP2 = "tiny-random-blip2"  # model name that builds the tiny random BLIP-2 of ``captioner.tiny_blip2``
ModelRef = Annotated[str, ConfigPath(if_exists=True)]  # a local folder when it exists, else a hub id


class RS3SourceConfig(ConfigModel):
    """One RS3 dataset: its root as officially distributed, optional glob patterns, partition size."""

    name: Literal["fmow", "ben", "millionaid"]
    root: PathStr
    patterns: list[str] | None = Field(default=None, description="None = the official layout's default")
    files_per_partition: int = Field(default=5000, ge=1, le=1_000_000)
    limit: int | None = Field(default=None, ge=1, description="first N items after sorting (smoke runs)")


class CaptionerConfig(ConfigModel):
    """BLIP-2 captioner and its decoding parameters (all stored in each sample's provenance)."""

    model: ModelRef = Field(default="Salesforce/blip2-opt-6.7b", description="hub id, local dir or tiny name")
    revision: str | None = None
    adapter: PathStr | None = Field(default=None, description="LoRA adapter dir (peft), e.g. RSITMD-tuned")
    dtype: Literal["fp32", "fp16", "bf16"] = "fp16"
    prompt: str | None = Field(default=None, description="None = unconditional captioning, as published")
    n_samples: int = Field(default=20, ge=1, le=256)
    top_p: float = Field(default=0.95, gt=0, le=1)
    top_k: int = Field(default=50, ge=0)
    max_length: int = Field(default=50, ge=2, le=512, description="tokens incl. BOS, as the RS5M script")
    batch_size: int = Field(default=8, ge=1, le=1024, description="images per generate call")


class RankerConfig(ConfigModel):
    """An open_clip model used to rank candidate captions; ``keep`` = how many survive its ranking."""

    model: str
    pretrained: str | None = None
    checkpoint: PathStr | None = None
    precision: Literal["fp32", "fp16", "bf16"] = "fp16"
    init_seed: int = 0
    keep: int = Field(ge=1, le=256)


class RS3Config(ConfigModel):
    """Everything the ``rs3`` flow needs."""

    sources: list[RS3SourceConfig] = Field(default_factory=list)
    captioner: CaptionerConfig = Field(default_factory=CaptionerConfig)
    ranker_a: RankerConfig = Field(
        default_factory=lambda: RankerConfig(model="ViT-H-14", pretrained="laion2b_s32b_b79k", keep=10)
    )
    ranker_b: RankerConfig = Field(
        default_factory=lambda: RankerConfig(model="RN50x64", pretrained="openai", keep=5)
    )
    rotations: int = Field(default=12, ge=2, le=360)
    rotation_ranker: Literal["a", "b"] = Field(default="b", description="CLIP that scores rotated views")
    final_rule: Literal["uid", "top1", "rotation"] = Field(
        default="uid", description="uid: top-1 or rotation pick chosen by a hash of seed and uid"
    )
    seed: int = 2023
    device: str = Field(default="auto", description="auto = cuda when available, else cpu")
    torch_threads: int | None = Field(
        default=None, ge=1, le=256, description="torch CPU threads in caption tasks (None = torch default)"
    )
    dask_gpu: Literal["auto", "always", "never"] = Field(
        default="auto", description="ask Dask for GPU=1 per caption task: auto = when a worker offers GPU"
    )
    ben_scale_max: int = Field(default=3000, ge=1, le=65535)
    pub11_meta: bool = Field(default=True, description="meta-captions + place names for PUB11 candidates")
    pub11_stage: str = Field(
        default=StageName.KEYWORD.value, description="version stage whose parquet rows are read"
    )
    cc3m_min_prob: float = Field(default=0.9, ge=0, le=1)
    cc3m_max_tags: int = Field(default=3, ge=1)
    place_min_population: int = Field(default=15000, ge=0, description="gazetteer cities for place names")

    @model_validator(mode="after")
    def _keeps_nest(self) -> RS3Config:
        if not self.ranker_b.keep <= self.ranker_a.keep <= self.captioner.n_samples:
            raise ValueError("need ranker_b.keep <= ranker_a.keep <= captioner.n_samples")
        names = [s.name for s in self.sources]
        if len(names) != len(set(names)):
            raise ValueError(f"each RS3 source may appear once: {names}")
        return self


def load_rs3_config(path: str | os.PathLike[str]) -> RS3Config:
    """Load an RS3 config YAML (top-level keys of ``RS3Config``, or nested under ``rs3:``); relative paths
    resolve against the YAML's folder (``rs5m.config.loader``)."""
    return load_config(path, RS3Config, section="rs3")

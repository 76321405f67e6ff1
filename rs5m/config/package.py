"""Packaging configuration: train/val split, shard layouts and shard sizes.

``PackageConfig`` is composed into the build config by the packaging flow; every knob of the final
webdataset export lives here, never in the writer.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Layout = Literal["rs5m", "open_clip"]
LAYOUTS: tuple[str, ...] = ("rs5m", "open_clip")


class PackageConfig(BaseModel):
    """How kept samples become shards.

    - ``val_fraction``: share of each subset assigned to validation, by a seeded hash of the dedup
      cluster id (else uid), so an image and its duplicates land in the same split.
    - ``layouts``: which member conventions to write; each layout is a full copy of the images.
      ``rs5m`` is the released format (``.img_name/.img_content/.caption``), ``open_clip`` is the
      ``.jpg|png|webp/.txt/.json`` convention plain webdataset and open_clip read.
    - A shard is closed when it holds ``max_samples_per_shard`` samples or adding the next sample
      would make the file pass ``max_bytes_per_shard`` (a lone sample larger than that still gets
      its own shard); ``n_shards`` (when set and the total is known) overrides
      ``max_samples_per_shard`` with ``ceil(total / n_shards)``.
    - ``tar_mtime`` is stamped on every member so identical inputs give identical shard bytes.
    """

    model_config = ConfigDict(extra="forbid")

    val_fraction: float = Field(default=0.05, ge=0.0, le=0.5)
    seed: int = 2023
    layouts: list[Layout] = Field(default_factory=lambda: ["rs5m", "open_clip"], min_length=1)
    max_samples_per_shard: int = Field(default=10_000, ge=1, le=10_000_000)
    max_bytes_per_shard: int = Field(default=1 << 30, ge=1 << 10)
    n_shards: int | None = Field(default=None, ge=1, le=1_000_000)
    tar_mtime: int = Field(default=0, ge=0)
    fsync: bool = True

    @field_validator("layouts")
    @classmethod
    def _unique_layouts(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate layouts in {v}")
        return v

    def samples_per_shard(self, n_total: int | None = None) -> int:
        """Effective sample cap per shard: ``ceil(n_total / n_shards)`` when both are known."""
        if self.n_shards is not None and n_total:
            return max(1, math.ceil(n_total / self.n_shards))
        return self.max_samples_per_shard

"""Typed run configuration (pydantic): one ``BuildConfig`` per dataset-version build, saved with it.

Thresholds and knobs live here, never in stage code. Each stage has its own ``<Stage>Config``; the
build config composes them. Configs load from YAML (``deployments/*.yaml``) via ``load_build_config``,
with the one path rule of ``rs5m.config.loader``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from rs5m.config.loader import ConfigModel, PathKeys, PathStr, load_config
from rs5m.config.package import PackageConfig
from rs5m.config.rs3 import RS3Config
from rs5m.config.stages import DedupConfig, DownloadConfig, OutlierConfig, ScoringConfig, ValidityConfig
from rs5m.core.layout import DataRoot, VersionLayout
from rs5m.core.schema import SOURCE_ORDER


class SourceInput(ConfigModel):
    """One PUB11 source: which files to read and source-specific options.

    ``files`` are paths or glob patterns, relative paths resolved against the config file's folder.
    ``options`` are validated by the source adapter's own options model (see ``rs5m.sources``).
    """

    name: str
    files: list[PathStr] = Field(min_length=1)
    options: Annotated[dict[str, Any], PathKeys("_file")] = Field(default_factory=dict)
    allow_empty: bool = Field(default=False, description="a source whose files give no valid row is no error")

    @field_validator("name")
    @classmethod
    def _known_source(cls, v: str) -> str:
        if v not in SOURCE_ORDER:
            raise ValueError(f"unknown source {v!r}; expected one of {SOURCE_ORDER}")
        return v


class IngestConfig(ConfigModel):
    """Reading and validating source files (one pass with the keyword filter)."""

    rows_per_partition: int = Field(
        default=1_000_000,
        ge=1,
        le=50_000_000,
        description="target rows of a partition when a file can be split",
    )
    max_url_length: int = Field(default=2048, ge=16)
    max_caption_length: int = Field(default=100_000, ge=16)
    keep_all_rows: bool = Field(
        default=False,
        description="also write every valid row normalised (what `why` needs to explain a non-match); "
        "~100 bytes per input row",
    )


# RS5M §3: 27 group-1 patterns, 15 group-2 patterns, then the two Fig. 3 space variants.
DEFAULT_PATTERNS: tuple[str, ...] = (
    "remote sensing", "earth observ", "aerial imag", "aerial photo", "aerial map", "aerial pic",
    "aerial view", "aerial scan", "aerial satellite", "satellite imag", "satellite photo", "satellite map",
    "satellite pic", "satellite view", "satellite scan", "satellite data", "satellite surveillance",
    "space photo", "spaceborne photo", "space-borne photo", "space imag", "spaceborne imag",
    "space-borne imag", "space view", "spaceborne view", "space-borne view", "space surveillance",
    "Google Earth", "Freesound", "Sentinel-1", "Sentinel-2", "Gaofen", "USGS", "NAIP", "MODIS", "EOSDIS",
    "WorldView", "Planet Dove", "ArcGIS", "Maxar", "Landsat", "Geographic Information System",
    "sentinel 1", "sentinel 2",
)  # fmt: skip


class KeywordConfig(ConfigModel):
    """RS keyword filter. ``patterns=None`` means the 44 RS5M patterns; ``extra_patterns`` extend them."""

    patterns: list[str] | None = None
    extra_patterns: list[str] = Field(default_factory=list)
    word_start: bool = True


class DaskConfig(ConfigModel):
    """Where Dask work runs: a temporary LocalCluster, or an existing scheduler at ``address``."""

    address: str | None = None
    n_workers: int = Field(default=2, ge=1, le=1024)
    threads_per_worker: int = Field(default=1, ge=1, le=256)
    processes: bool = True
    partitions_per_task: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="partitions one task runs in turn (None: ~4 tasks per worker)",
    )


class SampleServerConfig(ConfigModel):
    """The embedded sample world's local image server (127.0.0.1 only)."""

    root: PathStr
    port: int = Field(ge=1024, le=65535)


RUN_FIELDS = {"version", "root", "dask", "retry_failed"}  # where/which/how this run: not part of the hash


class BuildConfig(ConfigModel):
    """Everything one ``build-rs5m`` run needs."""

    version: str = "dev"
    root: PathStr = Field(default="data", description="data root; relative: to the config file's folder")
    sources: list[SourceInput] = Field(min_length=1)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    keyword: KeywordConfig = Field(default_factory=KeywordConfig)
    download: DownloadConfig = Field(default_factory=DownloadConfig)
    validity: ValidityConfig = Field(default_factory=ValidityConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    detector: PathStr | None = Field(
        default=None, description="RS detector checkpoint (flow train-rs-detector); none: c_rs is not used"
    )
    outlier: OutlierConfig = Field(default_factory=OutlierConfig)
    package: PackageConfig = Field(default_factory=PackageConfig)
    rs3: RS3Config | None = None
    dask: DaskConfig = Field(default_factory=DaskConfig)
    sample_server: SampleServerConfig | None = None
    retry_failed: bool = Field(
        default=False, description="this run re-downloads rows that failed transiently (not in the hash)"
    )

    @field_validator("version")
    @classmethod
    def _version_name(cls, v: str) -> str:
        # ``{now:%Y%m%d}`` makes a fresh version per scheduled run; the name becomes a folder name.
        if "{" in v:
            try:
                v = v.format(now=dt.datetime.now(dt.UTC))
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"bad version template {v!r}: only {{now:<strftime>}} is known") from exc
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", v):
            raise ValueError(f"version name {v!r} must be letters, digits, '.', '_' or '-' (a folder name)")
        return v

    @model_validator(mode="after")
    def _allow_sample_server(self) -> BuildConfig:
        # The sample world's own image server is the one loopback host a build may fetch from.
        if self.sample_server is not None:
            host = f"127.0.0.1:{self.sample_server.port}"
            if host not in self.download.allow_hosts:
                self.download.allow_hosts.append(host)
        return self

    def layout(self) -> VersionLayout:
        """Every path of this version (``rs5m.core.layout``)."""
        return DataRoot.of(self.root).version(self.version)

    def version_dir(self) -> Path:
        """Folder holding every output of this version."""
        return self.layout().dir

    def source(self, name: str) -> SourceInput:
        """The input of source ``name``; ``KeyError`` when the config has none."""
        for src in self.sources:
            if src.name == name:
                return src
        raise KeyError(f"the config has no source {name!r}")

    def config_hash(self) -> str:
        """Hash of what this config builds: every field but where/which version and how this run goes,
        paths as the config file writes them (``ConfigModel.portable_dump``), so the same config in two
        checkouts hashes the same."""
        payload = self.portable_dump(exclude=RUN_FIELDS)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _dask_from_env(raw: dict[str, Any]) -> dict[str, Any]:
    env_address = os.environ.get("RS5M_DASK_ADDRESS")
    if env_address and not (raw.get("dask") or {}).get("address"):
        raw = {**raw, "dask": {**(raw.get("dask") or {}), "address": env_address}}
    return raw


def load_build_config(path: str | os.PathLike[str], **overrides: Any) -> BuildConfig:
    """Load a YAML build config (``rs5m.config.loader``: relative paths, ``root`` included, resolve against
    the YAML's folder; one-line errors).

    ``overrides`` (``root``, ``version``, ``dask_address`` or any dotted key) replace the file's values when
    not ``None``; ``RS5M_DASK_ADDRESS`` in the environment sets the Dask scheduler when the config has none.
    """
    over = {("dask.address" if k == "dask_address" else k): v for k, v in overrides.items()}
    return load_config(Path(path), BuildConfig, over, prepare=_dask_from_env)

"""Where every file of a data root and of a dataset version lives: the one owner of the on-disk layout.

A data root holds the lineage database, the versions, build locks and scratch space::

    <root>/lineage.duckdb              the lineage store (rs5m.lineage.store is its one writer)
    <root>/ratings.duckdb              human ratings (rs5m.rating.store)
    <root>/versions/<version>/         one dataset version (below)
    <root>/.locks/<version>.lock       the build lock of a version (rs5m.core.locks)
    <root>/.prefect/                   Prefect's home for local runs
    <root>/.tmp/                       scratch files of model loading and the like
    <root>/logs/rs5m.log               the CLI's full log (tracebacks included) of runs on this root
    <root>/train-runs/<name>/          training runs

Every stage of a version writes under its own folder, one scheme for PUB11 and RS3 (RS3 and geo-metadata
stages sit under ``rs3/``)::

    <stage>/<source>/<part>.parquet          the partition's output (a folder for download)
    <stage>/_<kind>/<source>/<part>.<ext>    side outputs of a partition (rejects, embeddings, plans)
    <stage>/<name>                           a barrier's own files (decisions.parquet, grid.csv)
    <stage>/_stats/<source>/<part>.json      the partition's counts, written last: its done marker
                                             (barriers write one per source, partition "global";
                                             packaging one per source and subset)

A version folder also holds ``config.json`` (the resolved config), ``plan.json`` (the partitions of its
inputs) and, once built, ``COMPLETE``.
Stage names come from ``rs5m.core.schema.StageName``; nothing else in the code base spells a path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rs5m.core.schema import StageName

GLOBAL = "global"  # the partition name of a barrier's per-source stats
RS3_STAGES = frozenset({StageName.RS3_READ, StageName.RS3_CAPTION, StageName.META_CAPTION, StageName.PLACES})
_STATS = "_stats"


@dataclass(frozen=True)
class DataRoot:
    """A data root: the lineage database, the versions and the scratch space under one folder."""

    path: Path

    @classmethod
    def of(cls, root: str | os.PathLike[str]) -> DataRoot:
        """The data root at ``root`` (not created)."""
        return cls(Path(root))

    @property
    def lineage_db(self) -> Path:
        """The lineage database."""
        return self.path / "lineage.duckdb"

    @property
    def ratings_db(self) -> Path:
        """The rating tool's own database (kept apart from the lineage store's single writer)."""
        return self.path / "ratings.duckdb"

    @property
    def versions_dir(self) -> Path:
        """The folder holding every version."""
        return self.path / "versions"

    @property
    def locks_dir(self) -> Path:
        """Build locks, one file per version."""
        return self.path / ".locks"

    def lock_file(self, version: str) -> Path:
        """The build lock of ``version``."""
        return self.locks_dir / f"{version}.lock"

    @property
    def prefect_home(self) -> Path:
        """Prefect's home for builds run from this root without a Prefect server."""
        return self.path / ".prefect"

    @property
    def scratch_dir(self) -> Path:
        """Scratch files that must not land in the system temp folder (removed by their writers)."""
        return self.path / ".tmp"

    @property
    def log_file(self) -> Path:
        """The CLI's full log of runs on this root: every record and traceback the terminal is spared."""
        return self.path / "logs" / "rs5m.log"

    @property
    def train_runs_dir(self) -> Path:
        """Training runs."""
        return self.path / "train-runs"

    def version(self, name: str) -> VersionLayout:
        """The layout of version ``name`` under this root."""
        return VersionLayout(self.versions_dir / name)

    def version_names(self) -> list[str]:
        """Names of the version folders present, sorted."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if p.is_dir())


@dataclass(frozen=True)
class VersionLayout:
    """Every path of one dataset version (see the module docstring for the scheme).

    ``dir`` is the version folder, normally ``<root>/versions/<name>`` (``DataRoot.version``); any folder
    works for tests and tools that hold a version elsewhere.
    """

    dir: Path

    @classmethod
    def of(cls, version_dir: str | os.PathLike[str]) -> VersionLayout:
        """The layout of the version folder ``version_dir``."""
        return cls(Path(version_dir))

    @property
    def name(self) -> str:
        """The version's name (its folder's name)."""
        return self.dir.name

    @property
    def root(self) -> Path:
        """The data root of a version held in the standard place (``<root>/versions/<name>``)."""
        return self.dir.parent.parent

    @property
    def data_root(self) -> DataRoot:
        """The data root this version lives in."""
        return DataRoot(self.root)

    @property
    def config_file(self) -> Path:
        """The resolved config, its hash and the code version."""
        return self.dir / "config.json"

    @property
    def plan_file(self) -> Path:
        """The build's plan: every input file (or piece of one) and its partition name."""
        return self.dir / "plan.json"

    @property
    def forecast_file(self) -> Path:
        """The forecast made when the build started (``rs5m.pipeline.forecast``)."""
        return self.dir / "forecast.json"

    @property
    def complete_marker(self) -> Path:
        """Written last when the version is complete (it is immutable from then on)."""
        return self.dir / "COMPLETE"

    def stage_dir(self, stage: StageName) -> Path:
        """The folder of a stage."""
        return self.dir / ("rs3" if stage in RS3_STAGES else "") / stage.value

    def stats(self, stage: StageName, source: str, part: str = GLOBAL) -> Path:
        """The stats file (done marker) of one partition of a stage, or a barrier's per-source one."""
        return stats_in(self.stage_dir(stage), source, part)

    def stats_files(self, stage: StageName | None = None, source: str | None = None) -> list[Path]:
        """Every stats file of a stage (all stages when None), of one source or all, sorted."""
        stages = [stage] if stage is not None else list(StageName)
        pattern = f"{source}/*.json" if source else "*/*.json"
        return sorted(p for s in stages for p in (self.stage_dir(s) / _STATS).glob(pattern))

    def output(self, stage: StageName, source: str, part: str, suffix: str = ".parquet") -> Path:
        """The output of one partition: ``<stage>/<source>/<part><suffix>`` (a folder when suffix is '')."""
        return self.stage_dir(stage) / source / f"{part}{suffix}"

    def outputs(self, stage: StageName, suffix: str = ".parquet") -> list[tuple[str, str, Path]]:
        """``(source, part, path)`` of every partition output present for a stage, sorted."""
        base = self.stage_dir(stage)
        found = base.glob(f"*/*{suffix}") if suffix else (p for p in base.glob("*/*") if p.is_dir())
        keep = (p for p in found if not p.parent.name.startswith("_"))
        return sorted((p.parent.name, p.name.removesuffix(suffix), p) for p in keep)

    def side(self, stage: StageName, kind: str, source: str, part: str, suffix: str = ".parquet") -> Path:
        """A side output of one partition: ``<stage>/_<kind>/<source>/<part><suffix>``."""
        return self.stage_dir(stage) / f"_{kind}" / source / f"{part}{suffix}"

    def sides(self, stage: StageName, kind: str, suffix: str = ".parquet") -> list[Path]:
        """Every side output of one kind of a stage, sorted."""
        return sorted((self.stage_dir(stage) / f"_{kind}").glob(f"*/*{suffix}"))

    def partition_files(self, stage: StageName, source: str, part: str) -> list[Path]:
        """Every file or folder one partition of a stage wrote (outputs, side outputs, stats); empty unless
        its stats file exists."""
        stats = self.stats(stage, source, part)
        if not stats.exists():
            return []
        base = self.stage_dir(stage)
        sides = (
            d for d in base.glob("_*") if d.name not in (_STATS, "_timing")
        )  # timings: of the run that did it
        folders = [base / source, *(d / source for d in sides)]
        found = [p for d in folders if d.is_dir() for p in d.iterdir() if _of_part(p.name, part)]
        return [*sorted(found), stats]

    def barrier_file(self, stage: StageName, name: str) -> Path:
        """A barrier stage's own file, e.g. ``dedup/decisions.parquet``."""
        return self.stage_dir(stage) / name

    @property
    def rs3_images_dir(self) -> Path:
        """RGB images the version made itself (BigEarthNet composites): ``rs3/images/<source>/<part>/``."""
        return self.dir / "rs3" / "images"

    @property
    def geo_dir(self) -> Path:
        """The geo report of RS3 + PUB11 (counts, places, world map, markdown)."""
        return self.dir / "rs3" / "geo"

    def package_dir(self, layout: str | None = None) -> Path:
        """The packaging folder, or one shard layout's folder in it."""
        base = self.stage_dir(StageName.PACKAGE)
        return base / layout if layout else base

    def temp_files(self) -> Iterator[Path]:
        """Temporary files of interrupted atomic writes (``.<name>.*.tmp``) anywhere in the version."""
        return self.dir.rglob(".*.tmp")


_PART_SUFFIXES = ("", ".parquet", ".json", ".npy", ".uids.npy")


def _of_part(name: str, part: str) -> bool:
    # exact suffixes only: partition names contain dots ("cc12m.tsv"), so a prefix test would also take
    # another partition's files ("cc12m.tsv.gz.parquet" is not "cc12m.tsv"'s)
    return any(name == part + suffix for suffix in _PART_SUFFIXES)


def stats_in(stage_dir: Path, source: str, part: str = GLOBAL) -> Path:
    """The stats file of one partition inside a stage folder (``<stage_dir>/_stats/<source>/<part>.json``)."""
    return stage_dir / _STATS / source / f"{part}.json"


def stats_glob(stage_dir: Path, part: str = "*") -> list[Path]:
    """Every stats file of a stage folder for partition name ``part`` (a glob), sorted."""
    return sorted(stage_dir.glob(f"{_STATS}/*/{part}.json"))


def is_stats_dir(path: Path) -> bool:
    """Whether ``path`` is a stage's stats folder (callers listing outputs skip it)."""
    return path.name == _STATS

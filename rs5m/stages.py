"""Stage planning and the Dask-parallel keyword stage (library side; no Prefect, no dask.distributed).

``plan_inputs`` expands each source's globs into input files (one ingest unit each);
``run_keyword_stage`` runs ``rs5m.keywords.filter_partition`` over every ingest partition with
``dask.dataframe`` ``map_partitions``: each Dask partition carries one partition path, so a worker's
memory is bounded by one streamed parquet partition, never by the dataset. Whatever Dask scheduler is
active (a distributed Client set by the caller, or Dask's local threads) runs it.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import dask.dataframe as dd
import pandas as pd

from rs5m.config import BuildConfig, KeywordConfig
from rs5m.fsio import PartitionStats
from rs5m.ingest import partition_name
from rs5m.schema import Stage


@dataclass(frozen=True)
class InputFile:
    """One input file of one source: the unit of ingest work."""

    source: str
    path: str
    partition: str


def plan_inputs(cfg: BuildConfig) -> list[InputFile]:
    """Expand every source's file globs; raise ``FileNotFoundError`` naming a pattern that matched nothing."""
    plan: list[InputFile] = []
    for src in cfg.sources:
        names: set[str] = set()
        for pattern in src.files:
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise FileNotFoundError(f"source {src.name}: no file matches {pattern!r}")
            for path in matches:
                name = partition_name(path)
                while name in names:  # same base name in two folders: keep both, distinctly
                    name += "_"
                names.add(name)
                plan.append(InputFile(src.name, path, name))
    return plan


def keyword_paths(version_dir: Path, source: str, part: str) -> tuple[Path, Path]:
    """(candidates parquet, stats file) of one ingest partition."""
    base = version_dir / Stage.KEYWORD.value
    return base / source / f"{part}.parquet", base / "_stats" / source / f"{part}.json"


_META = pd.DataFrame(
    {"source": pd.Series(dtype=str), "partition": pd.Series(dtype=str), "stats": pd.Series(dtype=object)}
)


def _filter_frame(frame: pd.DataFrame, version_dir: str, cfg_json: str) -> pd.DataFrame:
    from rs5m.keywords import filter_partition  # imported on the worker

    cfg = KeywordConfig.model_validate_json(cfg_json)
    out = []
    for row in frame.itertuples(index=False):
        cand, stats_path = keyword_paths(Path(version_dir), row.source, Path(row.path).stem)
        stats = filter_partition(
            row.path, str(cand), str(stats_path), cfg=cfg, source=row.source, partition=Path(row.path).stem
        )
        out.append({"source": row.source, "partition": stats.partition, "stats": stats})
    return pd.DataFrame(out, columns=list(_META.columns))


def run_keyword_stage(
    version_dir: Path, partitions: list[tuple[str, str]], cfg: KeywordConfig
) -> list[PartitionStats]:
    """Filter every ingest partition ``(source, path)``; return one stats object per partition."""
    if not partitions:
        return []
    frames = [pd.DataFrame({"source": [s], "path": [p]}) for s, p in partitions]
    ddf = dd.from_map(lambda f: f, frames, meta=pd.DataFrame({"source": [], "path": []}).astype(str))
    result = ddf.map_partitions(_filter_frame, str(version_dir), cfg.model_dump_json(), meta=_META)
    return list(result.compute()["stats"])

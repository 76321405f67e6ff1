"""Stage planning and the Dask-parallel keyword stage (library side; no Prefect, no dask.distributed).

``plan_inputs`` expands each source's globs into input files (one ingest unit each);
``run_keyword_stage`` runs ``rs5m.pipeline.keywords.matcher.filter_partition`` over every ingest partition
with
``dask.dataframe`` ``map_partitions``: each Dask partition carries one partition path, so a worker's
memory is bounded by one streamed parquet partition, never by the dataset. Whatever Dask scheduler is
active (a distributed Client set by the caller, or Dask's local threads) runs it.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass

from rs5m.config import BuildConfig
from rs5m.pipeline.ingest import partition_name


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

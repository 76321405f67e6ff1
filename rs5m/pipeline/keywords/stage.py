"""The keyword stage: the RS keyword filter over one ingest partition (see ``matcher`` for the rules)."""

from __future__ import annotations

from pathlib import Path

import dask.dataframe as dd
import pandas as pd

from rs5m.config import KeywordConfig
from rs5m.core.schema import Stage
from rs5m.core.stats import PartitionStats


def keyword_paths(version_dir: Path, source: str, part: str) -> tuple[Path, Path]:
    """(candidates parquet, stats file) of one ingest partition."""
    base = version_dir / Stage.KEYWORD.value
    return base / source / f"{part}.parquet", base / "_stats" / source / f"{part}.json"


_META = pd.DataFrame(
    {"source": pd.Series(dtype=str), "partition": pd.Series(dtype=str), "stats": pd.Series(dtype=object)}
)


def _filter_frame(frame: pd.DataFrame, version_dir: str, cfg_json: str) -> pd.DataFrame:
    from rs5m.pipeline.keywords.matcher import filter_partition  # imported on the worker

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

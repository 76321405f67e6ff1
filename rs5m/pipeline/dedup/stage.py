"""The dedup barrier: URL, content and near-duplicate clusters over every valid image of every source.

Output: ``dedup/decisions.parquet``, one row per valid uid (cluster, keep, reason, keeper), then one stats
file per source (``dedup/_stats/<source>/global.json``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from rs5m.config import BuildConfig, DedupConfig
from rs5m.core.io import file_digest, write_parquet
from rs5m.core.layout import GLOBAL, VersionLayout
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats, read_done
from rs5m.pipeline.dedup.cluster import cluster_duplicates


def _validity_digest(version_dir: Path, sources: list[str]) -> str:
    """One digest over the validity stats files of ``sources`` (the dedup barrier's input)."""
    layout = VersionLayout.of(version_dir)
    files = sorted(p for s in sources for p in layout.stats_files(StageName.VALIDITY, s))
    parts = [f"{p.relative_to(version_dir)}={file_digest(p)}" for p in files]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def decisions_path(layout: VersionLayout) -> Path:
    """The dedup decisions of a version."""
    return layout.barrier_file(StageName.DEDUP, "decisions.parquet")


def run_dedup(version_dir: Path, sources: list[str], cfg: DedupConfig) -> list[PartitionStats]:
    """The global barrier: cluster every valid image of every source, write decisions, then stats.

    ``sources`` lists every source of the build, so a source with no valid image still gets a
    (zero) stats row. When every source's stats file exists and was made from the same validity stats
    files (``extra["upstream"]``) the barrier is done and is not rerun.
    """
    layout = VersionLayout.of(version_dir)
    markers = [layout.stats(StageName.DEDUP, source) for source in sources]
    upstream = _validity_digest(version_dir, sources)
    done = [read_done(m) for m in markers]
    if all(d is not None and d.extra.get("upstream") == upstream for d in done):
        return done
    files = [path for _, _, path in layout.outputs(StageName.VALIDITY)]
    cols = "uid, source, url, sha256, phash"
    if files:
        table = duckdb.sql(
            f"SELECT {cols} FROM read_parquet(?) WHERE valid ORDER BY uid", params=[[str(f) for f in files]]
        ).to_arrow_table()
    else:
        table = pa.table(
            {"uid": [], "source": [], "url": [], "sha256": [], "phash": pa.array([], pa.uint64())}
        )
    result = cluster_duplicates(table, cfg).join(table.select(["uid", "source", "url"]), "uid")
    write_parquet(decisions_path(layout), result.sort_by("uid"))
    out = []
    for source in sources:
        rows = result.filter(pc.equal(result.column("source"), source))
        stats = PartitionStats(
            stage=StageName.DEDUP.value, source=source, partition=GLOBAL, n_in=rows.num_rows
        )
        stats.extra = {"upstream": upstream}
        stats.n_out = int(pc.sum(rows.column("dup_keep")).as_py() or 0)
        for reason in rows.column("dup_reason").drop_null().to_pylist():
            stats.remove(reason)
        stats.write(markers[sources.index(source)])
        out.append(stats)
    return out


def run(layout: VersionLayout, sources: list[str], cfg: BuildConfig) -> list[PartitionStats]:
    """The dedup barrier over every source of the build (``rs5m.pipeline.registry``)."""
    return run_dedup(layout.dir, sources, cfg.dedup)

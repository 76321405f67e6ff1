"""The dedup barrier: URL, content, pHash and embedding near-duplicate clusters over every valid image of
every source, with the RS5M priority rule for keepers (``DedupConfig.method``: phash, embedding or both).

Output: ``dedup/decisions.parquet``, one row per valid uid (cluster, keep, reason, keeper), then one stats
file per source (``dedup/_stats/<source>/global.json``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rs5m.config import BuildConfig, DedupConfig
from rs5m.core.io import file_digest, write_parquet
from rs5m.core.layout import GLOBAL, VersionLayout
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats, read_done
from rs5m.pipeline.dedup.cluster import cluster_duplicates
from rs5m.pipeline.dedup.embedding import (
    EmbeddingPart,
    combine_decisions,
    find_semantic_duplicates,
    scoring_parts,
)
from rs5m.pipeline.validity.stage import downloaded_images


def _validity_digest(version_dir: Path, sources: list[str], stages: tuple[StageName, ...]) -> str:
    """One digest over the stats files of ``stages`` for ``sources`` (the dedup barrier's input: validity,
    and the scoring stage when its embeddings are used)."""
    layout = VersionLayout.of(version_dir)
    files = sorted(p for st in stages for s in sources for p in layout.stats_files(st, s))
    parts = [f"{p.relative_to(version_dir)}={file_digest(p)}" for p in files]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def decisions_path(layout: VersionLayout) -> Path:
    """The dedup decisions of a version."""
    return layout.barrier_file(StageName.DEDUP, "decisions.parquet")


def _decide(layout: VersionLayout, table: pa.Table, sources: list[str], cfg: DedupConfig) -> pa.Table:
    """URL and content duplicates, then pHash and/or embedding near-duplicates (``cfg.method``)."""
    if cfg.method == "embedding":  # no pHash step: URL and content clusters only before the embeddings
        table = table.set_column(
            table.schema.get_field_index("phash"), "phash", pa.nulls(len(table), pa.uint64())
        )
    first = cluster_duplicates(table, cfg)
    if cfg.method == "phash":
        return first
    dropped = first.filter(pc.invert(first["dup_keep"]))["uid"]
    semantic = find_semantic_duplicates(_embedding_parts(layout, sources, cfg), cfg, exclude=dropped)
    return combine_decisions(first, semantic)


def _embedding_parts(layout: VersionLayout, sources: list[str], cfg: DedupConfig) -> list[EmbeddingPart]:
    """The image embeddings of every valid image: the scoring stage's, or made here with ``embeddings``'s
    model (kept under ``dedup/_embeddings``, one file per validity partition, reused on rerun)."""
    if cfg.embeddings == "scoring":
        return scoring_parts(layout.stage_dir(StageName.OUTLIER_SCORE) / "_embeddings", sources)
    from rs5m.pipeline.dedup.embed import ImageEmbedder, write_part  # torch only where a model embeds

    embedder, folder = ImageEmbedder(cfg.embeddings), layout.stage_dir(StageName.DEDUP) / "_embeddings"
    for source, part, checked in layout.outputs(StageName.VALIDITY):
        if source not in sources or layout.side(StageName.DEDUP, "embeddings", source, part, ".npy").exists():
            continue
        valid = pq.read_table(checked, columns=["uid", "valid"]).filter(pc.field("valid"))["uid"]
        images = downloaded_images(layout.dir, source, part)
        images = images.filter(pc.is_in(images["uid"], valid)).sort_by("uid")
        vectors = embedder.embed(images["image"].to_pylist())
        write_part(folder / source, part, images["uid"].to_pylist(), vectors)
    return scoring_parts(folder, sources)


def run_dedup(version_dir: Path, sources: list[str], cfg: DedupConfig) -> list[PartitionStats]:
    """The global barrier: cluster every valid image of every source, write decisions, then stats.

    ``sources`` lists every source of the build, so a source with no valid image still gets a
    (zero) stats row. When every source's stats file exists and was made from the same validity stats
    files (``extra["upstream"]``) the barrier is done and is not rerun.
    """
    layout = VersionLayout.of(version_dir)
    markers = [layout.stats(StageName.DEDUP, source) for source in sources]
    uses_scores = cfg.method != "phash" and cfg.embeddings == "scoring"
    inputs = (StageName.VALIDITY, StageName.OUTLIER_SCORE) if uses_scores else (StageName.VALIDITY,)
    upstream = _validity_digest(version_dir, sources, inputs)
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
    result = _decide(layout, table, sources, cfg).join(table.select(["uid", "source", "url"]), "uid")
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

"""PUB11 packaging of a version: kept rows + captions + scores + image bytes ->
``rs5m.pipeline.package.packer``.

Reads, per download partition: the final keep decision (``rs5m.pipeline.package.keep.keep_decision``: outlier
decisions when present, else dedup), the validity rows (key, shard), the keyword-stage captions
(``keyword/<source>/<part>.parquet``: caption, extras, keywords) and the scores in the outlier
decisions (its numeric columns); then streams each download tar once, in order. Memory is bounded by
one partition's metadata and one image, never the dataset. See ``rs5m.pipeline.package.packer`` for the
outputs, the
image-format policy and resuming.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from rs5m.config import BuildConfig, PackageConfig
from rs5m.core.layout import VersionLayout
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats
from rs5m.pipeline.download.stage import download_dir, iter_shard_images
from rs5m.pipeline.package.keep import KeepDecision, keep_decision, sql_ident
from rs5m.pipeline.package.packer import (
    IMAGE_POLICY,
    MISSING_CAPTION,
    STAGE,
    UNREADABLE,
    Dropped,
    image_format,
    open_clip_image,
    package_subset,
    subset_status,
    summary,
)
from rs5m.shards import Sample, assign_split
from rs5m.shards.manifest import file_sha256

__all__ = [
    "IMAGE_MISSING", "IMAGE_POLICY", "MISSING_CAPTION", "STAGE", "UNREADABLE", "Dropped", "image_format",
    "iter_pub11_samples", "open_clip_image", "package_pub11", "package_subset",
]  # fmt: skip

IMAGE_MISSING = "image_missing"  # a kept row whose member is absent from its download tar


def _fingerprint(cfg: PackageConfig, keep: KeepDecision) -> dict[str, Any]:
    """What a finished packaging depended on: keep rule, packaging config and decision files' sha256."""
    conf = json.dumps(cfg.model_dump(exclude={"fsync"}), sort_keys=True).encode()
    return {
        "keep_rule": keep.rule,
        "config_sha256": hashlib.sha256(conf).hexdigest()[:16],
        "inputs": {f"{p.parent.name}/{p.name}": file_sha256(p) for p in keep.inputs},
    }


def _partitions(vdir: Path) -> list[tuple[str, str]]:
    return [(source, part) for source, part, _ in VersionLayout.of(vdir).outputs(StageName.VALIDITY)]


def _partition_rows(
    con: duckdb.DuckDBPyConnection, vdir: Path, source: str, part: str, keep: KeepDecision
) -> list[dict]:
    scores = "".join(f", kept.{sql_ident(c)} AS {sql_ident('score:' + c)}" for c in keep.score_cols)
    sql = (
        f"WITH kept AS ({keep.sql}) SELECT v.uid, v.url, v.key, v.shard, v.width, v.height, kept.dup_cluster"
        f"{scores}, k.caption, k.extras, k.keywords FROM read_parquet(?) v JOIN kept ON kept.uid = v.uid "
        "LEFT JOIN read_parquet(?) k ON k.uid = v.uid ORDER BY v.shard, v.key"
    )
    layout = VersionLayout.of(vdir)
    files = [layout.output(stage, source, part) for stage in (StageName.VALIDITY, StageName.KEYWORD)]
    cur = con.execute(sql, [*keep.params, *(str(f) for f in files)])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _meta(row: dict[str, Any], score_cols: tuple[str, ...]) -> dict[str, Any]:
    extras = json.loads(row["extras"]) if row["extras"] else {}
    scores = {c: row[f"score:{c}"] for c in score_cols if row[f"score:{c}"] is not None}
    return {"subset": "pub11", "url": row["url"], "dup_cluster": row["dup_cluster"], "width": row["width"],
            "height": row["height"], "keywords": list(row["keywords"] or []), "scores": scores,
            "caption_provenance": {"kind": "source_text", "field": extras.get("caption_from", "caption")},
            "extras": extras}  # fmt: skip


def iter_pub11_samples(vdir: Path, keep: KeepDecision) -> Iterator[Sample | Dropped]:
    """Every kept PUB11 row as a ``Sample`` (or ``Dropped``), partition by partition, tar by tar.

    ``Sample.ext`` is left empty: the packer detects the format from the bytes.
    """
    for source, part in _partitions(vdir):
        with duckdb.connect() as con:
            rows_of_part = _partition_rows(con, vdir, source, part, keep)
        by_shard: dict[str, dict[str, dict]] = {}
        for row in rows_of_part:
            if row["caption"] is None:
                yield Dropped(row["uid"], source, MISSING_CAPTION)
            else:
                by_shard.setdefault(row["shard"], {})[row["key"]] = row
        for shard, rows in by_shard.items():
            # the tar is looked up in this version's own download folder: versions can be moved or seeded
            tar = download_dir(vdir, source, part) / Path(shard).name
            for key, data in iter_shard_images(tar, set(rows)):
                row = rows.pop(key, None)
                if row is not None:
                    meta = _meta(row, keep.score_cols)
                    yield Sample(row["uid"], source, row["caption"], data, "", meta)
            for row in rows.values():
                yield Dropped(row["uid"], source, IMAGE_MISSING)


def _split_counts(keep: KeepDecision, cfg: PackageConfig) -> dict[str, int]:
    """Kept rows per split (before any drop), for ``cfg.n_shards``."""
    counts = {"train": 0, "val": 0}
    sql = f"SELECT coalesce(dup_cluster, uid) FROM ({keep.sql})"
    with duckdb.connect() as con:
        for batch in con.execute(sql, keep.params).fetch_record_batch(100_000):
            n_val = int(assign_split(batch.column(0), cfg.val_fraction, cfg.seed).sum())
            counts["val"] += n_val
            counts["train"] += batch.num_rows - n_val
    return counts


def package_pub11(version_dir: str | Path, cfg: PackageConfig, version: str | None = None) -> dict[str, Any]:
    """Package the kept PUB11 samples of a version into ``<version>/package/<layout>/``.

    Kept = ``rs5m.pipeline.package.keep.keep_decision`` (outlier decisions when present, else dedup).
    Skipped when already done with the same keep rule, config and decision files and intact
    (``rs5m.pipeline.package.packer``: the check hashes the pub11 shards once); otherwise repackaged,
    except that it refuses to write into a version marked complete (``ValueError`` saying why the
    packaging cannot be reused). Returns a summary: subset, keep_rule, skipped, n_in, n_out, removed,
    splits, layouts (dir, n_shards, n_samples, bytes per layout) and the stats rows.
    """
    vdir = Path(version_dir)
    layout = VersionLayout.of(vdir)
    out_root = layout.package_dir()
    keep = keep_decision(vdir)
    fp = _fingerprint(cfg, keep)
    done, why = subset_status(out_root, "pub11", cfg.layouts, fp)
    if done is not None:
        return summary(out_root, "pub11", cfg.layouts, done, skipped=True)
    if layout.complete_marker.exists():
        raise ValueError(f"version {vdir.name!r} is complete and immutable, and its pub11 packaging "
                         f"cannot be reused ({why}); package it as a new version")  # fmt: skip
    with duckdb.connect() as con:
        sources = [
            r[0] for r in con.execute(f"SELECT DISTINCT source FROM ({keep.sql})", keep.params).fetchall()
        ]
    n_total = _split_counts(keep, cfg) if cfg.n_shards else None
    return package_subset(
        iter_pub11_samples(vdir, keep), out_root, "pub11", cfg,
        version=version or vdir.name, fingerprint=fp, sources=sources, n_total=n_total,
    )  # fmt: skip


def run(layout: VersionLayout, sources: list[str], cfg: BuildConfig) -> list[PartitionStats]:
    """The PUB11 packaging barrier (``rs5m.pipeline.registry``): one stats row per packaged source."""
    result = package_pub11(layout.dir, cfg.package, version=layout.name)
    return [PartitionStats(**row) for row in result["stats"]]

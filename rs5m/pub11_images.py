"""PUB11 image stages over a version folder: download, validity (+ content hashes), global dedup.

Layout under ``versions/<v>/``:
- ``download/<source>/<part>/`` img2dataset shards + ``status.parquet``;
  ``download/_stats/<source>/<part>.json``
- ``validity/<source>/<part>.parquet`` one row per downloaded uid (valid, reason, size, sha256, phash);
  ``validity/_stats/<source>/<part>.json``
- ``dedup/decisions.parquet`` one row per valid uid (cluster, keep, reason, keeper);
  ``dedup/_stats/<source>/global.json`` (written after the decisions file)

Each function handles one partition (download, validity) or the one global barrier (dedup), and
returns its stats; a partition whose stats file exists is not redone.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rs5m.dedup import DedupConfig, cluster_duplicates, hash_partition
from rs5m.download import DownloadConfig, download_partition, status_path
from rs5m.fsio import PartitionStats, file_digest, read_done, write_parquet
from rs5m.images import ValidityConfig, check_partition
from rs5m.schema import Stage

_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def stats_path(version_dir: Path, stage: Stage, source: str, part: str) -> Path:
    """The done-marker stats file of one partition of a stage."""
    return version_dir / stage.value / "_stats" / source / f"{part}.json"


def download_dir(version_dir: Path, source: str, part: str) -> Path:
    """Folder of one partition's img2dataset output."""
    return version_dir / Stage.DOWNLOAD.value / source / part


def download_candidates(
    version_dir: Path,
    source: str,
    part: str,
    candidates: str,
    cfg: DownloadConfig,
    retry_failed: bool = False,
) -> PartitionStats:
    """Download one keyword-candidate partition (resume and transient-only retry included)."""
    return download_partition(
        candidates,
        download_dir(version_dir, source, part),
        stats_path(version_dir, Stage.DOWNLOAD, source, part),
        cfg,
        source=source,
        partition=part,
        retry_failed=retry_failed,
    )


def iter_shard_images(shard: str | Path, keys: set[str]) -> Iterator[tuple[str, bytes]]:
    """(key, bytes) of the image members of an img2dataset tar whose key is in ``keys``.

    Member names are never used as paths: members are read into memory by name only.
    """
    with tarfile.open(shard, "r") as tar:
        for member in tar:
            if not member.isfile():
                continue
            stem, dot, ext = member.name.rpartition(".")
            if dot and f".{ext.lower()}" in _IMAGE_EXTS and stem in keys:
                f = tar.extractfile(member)
                if f is not None:
                    yield stem, f.read()


def _downloaded_images(version_dir: Path, source: str, part: str) -> pa.Table:
    status = pq.read_table(status_path(download_dir(version_dir, source, part)))
    ok = status.filter(pc.equal(status.column("status"), "success"))
    data: dict[str, bytes] = {}
    keys_by_shard: dict[str, set[str]] = {}
    for row in ok.select(["key", "shard"]).to_pylist():
        keys_by_shard.setdefault(row["shard"], set()).add(row["key"])
    folder = download_dir(version_dir, source, part)
    for shard, keys in keys_by_shard.items():
        # by name inside this partition's folder: the recorded path may be another version's (incremental)
        data.update(iter_shard_images(folder / Path(shard).name, keys))
    images = [data.get(k) for k in ok.column("key").to_pylist()]
    return ok.select(["uid", "source", "url", "key", "shard"]).append_column(
        "image", pa.array(images, pa.binary())
    )


def validate_partition(
    version_dir: Path, source: str, part: str, vcfg: ValidityConfig, dcfg: DedupConfig
) -> PartitionStats:
    """Check every downloaded image of a partition and hash the valid ones (sha256, pHash).

    Memory is bounded by one download partition's images.
    """
    marker = stats_path(version_dir, Stage.VALIDITY, source, part)
    upstream = file_digest(stats_path(version_dir, Stage.DOWNLOAD, source, part))
    done = read_done(marker)
    if done is not None and done.extra.get("upstream") == upstream:
        return done
    images = _downloaded_images(version_dir, source, part)
    checked = check_partition(images, vcfg)
    valid_mask = checked.column("valid")
    hashes = hash_partition(images.filter(valid_mask), dcfg)
    table = images.drop_columns(["image"]).join(checked, "uid").join(hashes, "uid", join_type="left outer")
    write_parquet(version_dir / Stage.VALIDITY.value / source / f"{part}.parquet", table.sort_by("uid"))
    stats = PartitionStats(stage=Stage.VALIDITY.value, source=source, partition=part, n_in=images.num_rows)
    stats.extra = {"upstream": upstream}
    stats.n_out = int(pc.sum(valid_mask).as_py() or 0)
    for reason in checked.column("invalid_reason").drop_null().to_pylist():
        stats.remove(reason)
    stats.write(marker)
    return stats


def _validity_digest(version_dir: Path, sources: list[str]) -> str:
    """One digest over the validity stats files of ``sources`` (the dedup barrier's input)."""
    files = sorted(
        p for s in sources for p in (version_dir / Stage.VALIDITY.value / "_stats" / s).glob("*.json")
    )
    parts = [f"{p.relative_to(version_dir)}={file_digest(p)}" for p in files]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def run_dedup(version_dir: Path, sources: list[str], cfg: DedupConfig) -> list[PartitionStats]:
    """The global barrier: cluster every valid image of every source, write decisions, then stats.

    ``sources`` lists every source of the build, so a source with no valid image still gets a
    (zero) stats row. When every source's stats file exists and was made from the same validity stats
    files (``extra["upstream"]``) the barrier is done and is not rerun.
    """
    markers = [stats_path(version_dir, Stage.DEDUP, source, "global") for source in sources]
    upstream = _validity_digest(version_dir, sources)
    done = [read_done(m) for m in markers]
    if all(d is not None and d.extra.get("upstream") == upstream for d in done):
        return done
    files = sorted((version_dir / Stage.VALIDITY.value).glob("*/*.parquet"))
    files = [f for f in files if f.parent.name != "_stats"]
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
    write_parquet(version_dir / Stage.DEDUP.value / "decisions.parquet", result.sort_by("uid"))
    out = []
    for source in sources:
        rows = result.filter(pc.equal(result.column("source"), source))
        stats = PartitionStats(stage=Stage.DEDUP.value, source=source, partition="global", n_in=rows.num_rows)
        stats.extra = {"upstream": upstream}
        stats.n_out = int(pc.sum(rows.column("dup_keep")).as_py() or 0)
        for reason in rows.column("dup_reason").drop_null().to_pylist():
            stats.remove(reason)
        stats.write(markers[sources.index(source)])
        out.append(stats)
    return out

"""The validity stage: every downloaded image of one partition checked and hashed (sha256, pHash).

Output: ``validity/<source>/<part>.parquet``, one row per downloaded uid (valid, reason, size, sha256,
phash), then its stats file. Redone when the download partition's stats changed (``extra["upstream"]``).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rs5m.config import BuildConfig, DedupConfig, ValidityConfig
from rs5m.core.io import file_digest, write_parquet
from rs5m.core.layout import VersionLayout
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats, read_done
from rs5m.pipeline.dedup.cluster import hash_partition
from rs5m.pipeline.download.stage import download_dir, iter_shard_images
from rs5m.pipeline.download.status import status_path
from rs5m.pipeline.validity.check import check_partition


def downloaded_images(version_dir: Path, source: str, part: str) -> pa.Table:
    """``uid, source, url, key, shard, image`` of every image one download partition fetched (one
    partition's bytes in memory)."""
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
    layout = VersionLayout.of(version_dir)
    marker = layout.stats(StageName.VALIDITY, source, part)
    upstream = file_digest(layout.stats(StageName.DOWNLOAD, source, part))
    done = read_done(marker)
    if done is not None and done.extra.get("upstream") == upstream:
        return done
    images = downloaded_images(version_dir, source, part)
    checked = check_partition(images, vcfg)
    valid_mask = checked.column("valid")
    hashes = hash_partition(images.filter(valid_mask), dcfg)
    table = images.drop_columns(["image"]).join(checked, "uid").join(hashes, "uid", join_type="left outer")
    write_parquet(layout.output(StageName.VALIDITY, source, part), table.sort_by("uid"))
    stats = PartitionStats(
        stage=StageName.VALIDITY.value, source=source, partition=part, n_in=images.num_rows
    )
    stats.extra = {"upstream": upstream}
    stats.n_out = int(pc.sum(valid_mask).as_py() or 0)
    for reason in checked.column("invalid_reason").drop_null().to_pylist():
        stats.remove(reason)
    stats.write(marker)
    return stats


def run(layout: VersionLayout, source: str, partition: str, cfg: BuildConfig) -> PartitionStats:
    """The validity stage over one partition (``rs5m.pipeline.registry``)."""
    return validate_partition(layout.dir, source, partition, cfg.validity, cfg.dedup)

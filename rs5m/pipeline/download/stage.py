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

import tarfile
from collections.abc import Iterator
from pathlib import Path

from rs5m.config import DownloadConfig
from rs5m.core.schema import Stage
from rs5m.core.stats import PartitionStats
from rs5m.pipeline.download.img2ds import download_partition

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

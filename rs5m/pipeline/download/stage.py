"""The download stage: one keyword-candidate partition through img2dataset (``img2ds``), behind the guard.

Outputs (``rs5m.core.layout``): ``download/<source>/<part>/`` (img2dataset shards + ``status.parquet``), then
``download/_stats/<source>/<part>.json``. A partition whose stats file exists is not redone.
``iter_shard_images`` reads images back from those shards for the later stages.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

from rs5m.config import BuildConfig, DownloadConfig
from rs5m.core.layout import VersionLayout
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats
from rs5m.pipeline.download.img2ds import download_partition

_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def download_dir(version_dir: Path, source: str, part: str) -> Path:
    """Folder of one partition's img2dataset output."""
    return VersionLayout.of(version_dir).output(StageName.DOWNLOAD, source, part, suffix="")


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
        VersionLayout.of(version_dir).stats(StageName.DOWNLOAD, source, part),
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


def run(layout: VersionLayout, source: str, partition: str, cfg: BuildConfig) -> PartitionStats:
    """The download stage over one partition (``rs5m.pipeline.registry``)."""
    candidates = layout.output(StageName.KEYWORD, source, partition)
    return download_candidates(layout.dir, source, partition, str(candidates), cfg.download, cfg.retry_failed)

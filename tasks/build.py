"""Thin Prefect tasks wrapping the rs5m build library (retries, names, Dask client hand-off)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from prefect import get_run_logger, task
from prefect_dask import get_dask_client

from rs5m.config import BuildConfig
from rs5m.core import version as build
from rs5m.lineage import store as lineage
from rs5m.pipeline.dedup import stage as dedup_stage
from rs5m.pipeline.download import stage as download_stage
from rs5m.pipeline.incremental import seed_version
from rs5m.pipeline.ingest import ingest_file
from rs5m.pipeline.keywords.stage import keyword_paths, run_keyword_stage
from rs5m.pipeline.package.pub11 import package_pub11
from rs5m.pipeline.package.rs3 import package_rs3
from rs5m.pipeline.plan import InputFile
from rs5m.pipeline.validity import stage as validity_stage


@task(name="prepare-version")
def prepare_version(cfg: BuildConfig) -> str:
    """Create the version folder and save the config beside its outputs."""
    vdir = build.prepare_version(cfg)
    lineage.set_version_status(build.lineage_db(cfg), cfg.version, "running", cfg.config_hash(), cfg.root)
    return str(vdir)


@task(
    name="ingest-file",
    retries=1,
    retry_delay_seconds=2,
    task_run_name="ingest-{item.source}-{item.partition}",
)
def ingest_input(cfg: BuildConfig, item: InputFile) -> dict:
    """Normalise one source file into parquet partitions; returns its stats."""
    src = next(s for s in cfg.sources if s.name == item.source)
    return asdict(ingest_file(src, item.path, cfg.version_dir(), cfg.ingest, item.partition))


@task(name="filter-keywords")
def filter_keywords(cfg: BuildConfig, partitions: list[tuple[str, str]]) -> list[dict]:
    """Run the keyword filter over every ingest partition on the flow's Dask cluster."""
    with get_dask_client():
        return [asdict(s) for s in run_keyword_stage(cfg.version_dir(), partitions, cfg.keyword)]


@task(name="load-lineage")
def load_lineage(cfg: BuildConfig) -> int:
    """Load every stats file of the version into DuckDB (the single writer)."""
    return lineage.load_version(build.lineage_db(cfg), cfg.version, Path(cfg.version_dir()))


@task(name="finish-version")
def finish_version(cfg: BuildConfig, status: str = "complete") -> None:
    """Record the version's final status; a complete version also gets its COMPLETE marker."""
    if status == "complete":
        build.mark_complete(cfg)
    lineage.set_version_status(build.lineage_db(cfg), cfg.version, status, cfg.config_hash(), cfg.root)


@task(name="download-images", retries=1, retry_delay_seconds=5, task_run_name="download-{source}-{part}")
def download_images(cfg: BuildConfig, source: str, part: str, retry_failed: bool = False) -> dict:
    """Download one keyword-candidate partition with img2dataset (resumable)."""
    candidates, _ = keyword_paths(cfg.version_dir(), source, part)
    stats = download_stage.download_candidates(
        cfg.version_dir(), source, part, str(candidates), cfg.download, retry_failed
    )
    return asdict(stats)


@task(name="check-images", retries=1, task_run_name="validity-{source}-{part}")
def check_images(cfg: BuildConfig, source: str, part: str) -> dict:
    """Validity check and content hashes of one downloaded partition."""
    return asdict(validity_stage.validate_partition(cfg.version_dir(), source, part, cfg.validity, cfg.dedup))


@task(name="dedup-images")
def dedup_images(cfg: BuildConfig) -> list[dict]:
    """Global URL / content / near-duplicate clustering across all PUB11 sources (one barrier)."""
    sources = sorted({s.name for s in cfg.sources})
    return [asdict(s) for s in dedup_stage.run_dedup(cfg.version_dir(), sources, cfg.dedup)]


@task(name="seed-from-base")
def seed_from_base(cfg: BuildConfig, base_version: str) -> dict[str, int]:
    """Incremental build: link the base version's finished work for unchanged inputs into this version."""
    if base_version == "latest":
        base_version = lineage.latest_complete_version(build.lineage_db(cfg), exclude=cfg.version)
    base = Path(cfg.root) / "versions" / base_version
    if not (base / build.COMPLETE_MARKER).exists():
        raise ValueError(f"base version {base_version!r} is not a complete version under {cfg.root}")
    reused = seed_version(base, cfg)
    get_run_logger().info("reused from %s: %s partitions per stage", base_version, reused)
    return reused


@task(name="package-shards")
def package_shards(cfg: BuildConfig) -> dict:
    """Write the kept PUB11 pairs as train/val webdataset shards in every configured layout."""
    return package_pub11(cfg.version_dir(), cfg.package, version=cfg.version)


@task(name="package-rs3-shards")
def package_rs3_shards(cfg: BuildConfig) -> dict:
    """Write the captioned RS3 items as rs3-{train,val} shards beside the PUB11 shards."""
    return package_rs3(cfg.version_dir(), cfg.package, version=cfg.version)

"""Flow ``build-rs5m``: one dataset version, PUB11 subflow on a Dask task runner, lineage and artifacts."""

from __future__ import annotations

from typing import Any

import dask
from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture, as_completed
from prefect_dask import DaskTaskRunner
from pydantic import BaseModel, Field

from flows.rs3 import rs3
from rs5m.config import BuildConfig, DaskConfig, load_build_config
from rs5m.core.locks import Holder, version_lock
from rs5m.core.version import lineage_db, refuse_retry_of_complete
from rs5m.pipeline.plan import plan_inputs
from rs5m.sample import sample_server
from tasks.build import (
    check_images,
    dedup_images,
    download_images,
    filter_keywords,
    finish_version,
    ingest_input,
    load_lineage,
    package_rs3_shards,
    package_shards,
    prepare_version,
    seed_from_base,
)
from tasks.handoff import start_deployment
from tasks.report import publish_funnel
from tasks.rs3 import publish_rs3_funnel
from tasks.scoring import decide_outliers, publish_outlier_grid, submit_scoring


class BuildParams(BaseModel):
    """Parameters of ``build-rs5m`` (the deployment form in the UI)."""

    config: str = Field(default="deployments/sample.yaml", description="Build config YAML")
    root: str | None = Field(default=None, description="Data root (default: the config's root)")
    version: str | None = Field(default=None, description="Dataset version name (default: the config's)")
    dask_address: str | None = Field(default=None, description="Existing Dask scheduler; none = LocalCluster")
    retry_failed: bool = Field(default=False, description="Re-download only rows that failed transiently")
    base_version: str | None = Field(
        default=None,
        description="Incremental build: reuse this version's work for unchanged inputs "
        "('latest' = the newest "
        "complete version)",
    )
    wait_lock: float = Field(
        default=0,
        ge=0,
        le=7 * 24 * 3600,
        description="Seconds to wait while another build of this version holds its lock "
        "(0 = refuse at once); not part of the config hash",
    )
    handoff: list[str] = Field(
        default_factory=list,
        description="Deployments to start when the build completes (e.g. train-georsclip/full), "
        "given this version as parameter `version`",
    )


def task_runner(cfg: DaskConfig) -> DaskTaskRunner:
    """A DaskTaskRunner on an existing scheduler, or on a temporary LocalCluster (workers not profiling)."""
    if cfg.address:
        return DaskTaskRunner(address=cfg.address)
    # A worker's statistical profiler calls sys._current_frames() every 10 ms. On CPython 3.11 that holds
    # the runtime's thread-list lock while allocating; a GC there that finalises a socket releases the GIL,
    # and a thread exiting meanwhile (the download stage ends many) takes the GIL and waits for that lock:
    # the build hangs for good (seen here; distributed itself skips its loop profiler on 3.11 for this).
    # Set in this process: in-process workers read it, and nannies hand it to worker processes.
    dask.config.set({"distributed.worker.profile.enabled": False})
    kwargs = {
        "n_workers": cfg.n_workers,
        "threads_per_worker": cfg.threads_per_worker,
        "processes": cfg.processes,
    }
    return DaskTaskRunner(cluster_kwargs=kwargs)


def wait_all(futures: list[PrefectFuture], stage: str) -> list[Any]:
    """Results in completion order, logging progress; raises the first failed partition's own error."""
    logger = get_run_logger()
    results = []
    for i, future in enumerate(as_completed(futures), 1):
        results.append(future.result())
        if i == len(futures) or i % max(1, len(futures) // 10) == 0:
            logger.info("%s: %d/%d partitions done", stage, i, len(futures))
    return results


@flow(name="pub11")
def pub11(cfg: BuildConfig, retry_failed: bool = False) -> list[dict]:
    """Ingest → keyword filter → download → validity, per partition; the global dedup barrier; outlier
    scores per partition (GPU workers when the cluster has them); the pooled outlier decision."""
    inputs = plan_inputs(cfg)
    ingested = wait_all([ingest_input.submit(cfg, item) for item in inputs], "ingest")
    vdir = cfg.version_dir()
    partitions = [(s["source"], str(vdir / out)) for s in ingested for out in s["extra"]["outputs"]]
    keyword = filter_keywords.submit(cfg, partitions).result()
    parts = [(s["source"], s["partition"]) for s in keyword]
    # No future is kept past its stage: Dask recomputes a lost worker's held results, and a download
    # rerun after validity (with retry_failed, a second retry pass) would change its input under it.
    wait_all([download_images.submit(cfg, source, part, retry_failed) for source, part in parts], "download")
    wait_all([check_images.submit(cfg, source, part) for source, part in parts], "validity")
    dedup_images.submit(cfg).result()
    vdir, sources = str(cfg.version_dir()), sorted({s.name for s in cfg.sources})
    wait_all(submit_scoring(vdir, parts, cfg.scoring, cfg.detector), "scoring")
    decisions = decide_outliers.submit(vdir, sources, cfg.outlier).result()
    publish_outlier_grid(vdir, sources, cfg.outlier, cfg.version)
    return decisions


@flow(name="build-rs5m")
def build_rs5m(params: BuildParams | None = None) -> list[dict]:
    """Build one dataset version and return its PUB11 funnel rows.

    Holds the version's build lock (``rs5m.core.locks``) throughout: while another process builds the same
    version under the same root, raise ``VersionLocked`` at once, or after waiting ``wait_lock`` s.
    """
    params = params or BuildParams()
    cfg = load_build_config(
        params.config, root=params.root, version=params.version, dask_address=params.dask_address
    )
    logger = get_run_logger()

    def waiting(holder: Holder | None) -> None:
        who = holder.describe() if holder else "another process"
        logger.info("version %s is being built by %s; waiting up to %g s", cfg.version, who, params.wait_lock)

    # Before anything is written (version folder, lineage, the sample server's port); a second build of
    # the version fails here with VersionLocked, leaving the first one's version and status alone.
    with version_lock(cfg.root, cfg.version, wait_s=params.wait_lock, on_wait=waiting):
        return _build(cfg, params)


def _build(cfg: BuildConfig, params: BuildParams) -> list[dict]:
    logger = get_run_logger()
    logger.info("building version %s under %s", cfg.version, cfg.version_dir())
    if params.retry_failed:
        refuse_retry_of_complete(cfg)
    prepare_version(cfg)
    if params.base_version:
        seed_from_base(cfg, params.base_version)
    try:
        with sample_server(cfg):
            pub11.with_options(task_runner=task_runner(cfg.dask))(cfg, params.retry_failed)
        if cfg.rs3 is not None:  # after pub11: PUB11 meta-captions read its keyword candidates
            rs3.with_options(task_runner=task_runner(cfg.dask))(cfg.rs3, str(cfg.version_dir()))
        package_shards(cfg)
        if cfg.rs3 is not None:  # after the PUB11 shards: both update the same manifests
            package_rs3_shards(cfg)
    except BaseException:
        load_lineage(cfg)  # what finished is still counted, so the funnel shows how far it got
        finish_version(cfg, status="failed")
        raise
    load_lineage(cfg)
    rows = publish_funnel(cfg)
    if cfg.rs3 is not None:
        publish_rs3_funnel(str(lineage_db(cfg)), cfg.version)
    finish_version(cfg)
    for name in params.handoff:
        start_deployment(name, cfg)
    return rows

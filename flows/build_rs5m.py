"""Flow ``build-rs5m``: one dataset version: the pipeline subflow on one Dask task runner, then lineage,
status and every artifact of the build on this run (funnel, reasons, outlier grid, RS3 funnel, geo map)."""

from __future__ import annotations

import dask
from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect_dask import DaskTaskRunner
from pydantic import BaseModel, Field

from flows.pipeline import pipeline
from rs5m.config import BuildConfig, DaskConfig, load_build_config
from rs5m.core.locks import Holder, version_lock, waiting_message
from rs5m.core.version import lineage_db, refuse_retry_of_complete
from rs5m.sample import sample_server
from tasks.build import finish_version, load_lineage, prepare_version, seed_from_base
from tasks.handoff import start_deployment
from tasks.report import publish_forecast, publish_funnel
from tasks.rs3 import publish_rs3_funnel, report_geo
from tasks.scoring import publish_outlier_grid


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
        logger.info("%s", waiting_message(cfg.version, holder, params.wait_lock))

    # Before anything is written (version folder, lineage, the sample server's port); a second build of
    # the version fails here with VersionLocked, leaving the first one's version and status alone.
    with version_lock(cfg.root, cfg.version, wait_s=params.wait_lock, on_wait=waiting):
        return _build(cfg, params)


def _build(cfg: BuildConfig, params: BuildParams) -> list[dict]:
    logger = get_run_logger()
    logger.info("building version %s under %s", cfg.version, cfg.version_dir())
    if params.retry_failed:
        refuse_retry_of_complete(cfg)
        cfg = cfg.model_copy(update={"retry_failed": True})
    prepare_version(cfg)
    if params.base_version:
        seed_from_base(cfg, params.base_version)
    try:
        with sample_server(cfg):
            pipeline.with_options(task_runner=task_runner(cfg.dask))(cfg, report_to=flow_run.get_id())
    except BaseException:
        load_lineage(cfg)  # what finished is still counted, so the funnel shows how far it got
        finish_version(cfg, status="failed")
        raise
    load_lineage(cfg)
    rows = publish_funnel(cfg)
    publish_forecast(cfg)
    sources = sorted({s.name for s in cfg.sources})
    publish_outlier_grid(str(cfg.version_dir()), sources, cfg.outlier, cfg.version)
    if cfg.rs3 is not None:
        report_geo(str(cfg.version_dir()), cfg.version)
        publish_rs3_funnel(str(lineage_db(cfg)), cfg.version)
    finish_version(cfg)
    for name in params.handoff:
        start_deployment(name, cfg)
    return rows

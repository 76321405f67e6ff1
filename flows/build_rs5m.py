"""Flow ``build-rs5m``: one dataset version: the pipeline subflow on one Dask task runner, then lineage,
status and every artifact of the build on this run (funnel, reasons, outlier grid, RS3 funnel, geo map).

The parameters are flat and typed, so ``prefect deployment run build-rs5m/sample --param version=v2`` and
``--params '{"version": "v2"}'`` each change that one field and keep the deployment's others. Paths given
as parameters are relative to the working directory (a deployment's: the repository root); paths inside
the config file are relative to that file's folder (``rs5m.config.loader``).
"""

from __future__ import annotations

from typing import Annotated

import dask
from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect_dask import DaskTaskRunner
from pydantic import Field

from flows.pipeline import pipeline
from rs5m.config import BuildConfig, DaskConfig
from rs5m.core.locks import Holder, version_lock, waiting_message
from rs5m.core.version import lineage_db, refuse_retry_of_complete
from rs5m.sample import sample_server
from tasks.build import check_build, finish_version, load_lineage, prepare_version, seed_from_base
from tasks.handoff import start_deployment
from tasks.report import publish_forecast, publish_funnel, publish_funnel_comparison
from tasks.rs3 import publish_rs3_funnel, report_geo
from tasks.scoring import publish_outlier_grid

WEEK_S = 7 * 24 * 3600
Seconds = Annotated[float, Field(ge=0, le=WEEK_S)]
Name = Annotated[str, Field(min_length=1, max_length=120)]  # a version or deployment name
PathParam = Annotated[str, Field(min_length=1, max_length=4096)]


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
def build_rs5m(
    config: PathParam = "deployments/sample.yaml",
    root: PathParam | None = None,
    version: Name | None = None,
    dask_address: PathParam | None = None,
    retry_failed: bool = False,
    base_version: Name | None = None,
    wait_lock: Seconds = 0,
    handoff: list[Annotated[str, Field(min_length=3, max_length=300)]] | None = None,
) -> list[dict]:
    """Build one dataset version and return its PUB11 funnel rows.

    The config, every source's input files and the base version are checked before the version exists:
    a build that cannot start leaves no version behind. The version's build lock (``rs5m.core.locks``) is
    held throughout: while another process builds the same version under the same root, raise
    ``VersionLocked`` at once, or after waiting ``wait_lock`` s.

    Args:
        config: build config YAML; its relative paths (root included) resolve against its own folder
        root: data root, overriding the config's (relative: to the working directory)
        version: dataset version name, overriding the config's; `{now:%Y%m%d}` makes one per run
        dask_address: an existing Dask scheduler (tcp://host:8786); none = a temporary LocalCluster
        retry_failed: re-download only the rows that failed transiently (not part of the config hash)
        base_version: incremental build: reuse this complete version's work for unchanged inputs
            ('latest' = the newest complete version under the data root)
        wait_lock: seconds to wait while another build of this version holds its lock (0 = refuse at once)
        handoff: deployments to start when the build completes, e.g. train-georsclip/sample; each gets
            parameters dataset_version (this version) and data_root
    """
    logger = get_run_logger()
    logger.info("checking %s: config, inputs and base version", config)
    cfg, base, n_parts = check_build(config, root, version, dask_address, base_version)
    logger.info("config ok: %d sources, %d input files, data root %s", len(cfg.sources), n_parts, cfg.root)

    def waiting(holder: Holder | None) -> None:
        logger.info("%s", waiting_message(cfg.version, holder, wait_lock))

    # Before anything is written (version folder, lineage, the sample server's port); a second build of
    # the version fails here with VersionLocked, leaving the first one's version and status alone.
    with version_lock(cfg.root, cfg.version, wait_s=wait_lock, on_wait=waiting):
        return _build(cfg, base, retry_failed, handoff or [])


def _build(cfg: BuildConfig, base: str | None, retry_failed: bool, handoff: list[str]) -> list[dict]:
    logger = get_run_logger()
    if retry_failed:
        refuse_retry_of_complete(cfg)
        cfg = cfg.model_copy(update={"retry_failed": True})
    prepare_version(cfg)
    logger.info("building version %s under %s", cfg.version, cfg.version_dir())
    try:
        if base:
            seed_from_base(cfg, base)
        with sample_server(cfg):
            pipeline.with_options(task_runner=task_runner(cfg.dask))(cfg, report_to=flow_run.get_id())
    except BaseException:
        load_lineage(cfg)  # what finished is still counted, so the funnel shows how far it got
        finish_version(cfg, status="failed")
        raise
    load_lineage(cfg)
    rows = publish_funnel(cfg)
    publish_funnel_comparison(cfg)
    publish_forecast(cfg)
    sources = sorted({s.name for s in cfg.sources})
    publish_outlier_grid(str(cfg.version_dir()), sources, cfg.outlier, cfg.version)
    if cfg.rs3 is not None:
        report_geo(str(cfg.version_dir()), cfg.version)
        publish_rs3_funnel(str(lineage_db(cfg)), cfg.version)
    finish_version(cfg)
    logger.info("version %s complete: %s", cfg.version, cfg.version_dir())
    for name in handoff:
        start_deployment(name, cfg)
    return rows

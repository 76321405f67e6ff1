"""Flow ``build-rs5m``: one dataset version, PUB11 subflow on a Dask task runner, lineage and artifacts."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect_dask import DaskTaskRunner
from pydantic import BaseModel, Field

from rs5m.config import BuildConfig, DaskConfig, load_build_config
from rs5m.sample import sample_server
from rs5m.stages import plan_inputs
from tasks.build import (
    check_images,
    dedup_images,
    download_images,
    filter_keywords,
    finish_version,
    ingest_input,
    load_lineage,
    prepare_version,
)
from tasks.report import publish_funnel


class BuildParams(BaseModel):
    """Parameters of ``build-rs5m`` (the deployment form in the UI)."""

    config: str = Field(default="deployments/sample.yaml", description="Build config YAML")
    root: str | None = Field(default=None, description="Data root (default: the config's root)")
    version: str | None = Field(default=None, description="Dataset version name (default: the config's)")
    dask_address: str | None = Field(default=None, description="Existing Dask scheduler; none = LocalCluster")
    retry_failed: bool = Field(default=False, description="Re-download only rows that failed transiently")


def task_runner(cfg: DaskConfig) -> DaskTaskRunner:
    """A DaskTaskRunner on an existing scheduler, or on a temporary LocalCluster."""
    if cfg.address:
        return DaskTaskRunner(address=cfg.address)
    kwargs = {
        "n_workers": cfg.n_workers,
        "threads_per_worker": cfg.threads_per_worker,
        "processes": cfg.processes,
    }
    return DaskTaskRunner(cluster_kwargs=kwargs)


@flow(name="pub11")
def pub11(cfg: BuildConfig, retry_failed: bool = False) -> list[dict]:
    """Ingest → keyword filter → download → validity, per partition; then the global dedup barrier."""
    inputs = plan_inputs(cfg)
    ingested = [f.result() for f in [ingest_input.submit(cfg, item) for item in inputs]]
    partitions = [(s["source"], out) for s in ingested for out in s["extra"]["outputs"]]
    keyword = filter_keywords.submit(cfg, partitions).result()
    parts = [(s["source"], s["partition"]) for s in keyword]
    downloads = [download_images.submit(cfg, source, part, retry_failed) for source, part in parts]
    for future in downloads:
        future.result()  # raises the first failing partition's own error
    checks = [check_images.submit(cfg, source, part) for source, part in parts]
    for future in checks:
        future.result()
    return dedup_images.submit(cfg).result()


@flow(name="build-rs5m")
def build_rs5m(params: BuildParams | None = None) -> list[dict]:
    """Build one dataset version and return its PUB11 funnel rows."""
    params = params or BuildParams()
    cfg = load_build_config(
        params.config, root=params.root, version=params.version, dask_address=params.dask_address
    )
    logger = get_run_logger()
    logger.info("building version %s under %s", cfg.version, cfg.version_dir())
    prepare_version(cfg)
    try:
        with sample_server(cfg):
            pub11.with_options(task_runner=task_runner(cfg.dask))(cfg, params.retry_failed)
    except BaseException:
        load_lineage(cfg)  # what finished is still counted, so the funnel shows how far it got
        finish_version(cfg, status="failed")
        raise
    load_lineage(cfg)
    rows = publish_funnel(cfg)
    finish_version(cfg)
    return rows

"""Thin Prefect tasks of a build's bookkeeping: version folder, plan, incremental seed, lineage, status."""

from __future__ import annotations

from prefect import get_run_logger, task

from rs5m.config import BuildConfig
from rs5m.core import version as build
from rs5m.core.io import write_json
from rs5m.lineage import store as lineage
from rs5m.pipeline import forecast, ingest, plan
from rs5m.pipeline.incremental import seed_version


@task(name="prepare-version")
def prepare_version(cfg: BuildConfig) -> str:
    """Create the version folder and save the config beside its outputs."""
    vdir = build.prepare_version(cfg)
    lineage.set_version_status(build.lineage_db(cfg), cfg.version, "running", cfg.config_hash(), cfg.root)
    return str(vdir)


@task(name="plan-inputs")
def plan_inputs(cfg: BuildConfig) -> list[tuple[str, str]]:
    """Expand the sources' globs into the build's partitions and save the plan in the version folder."""
    return plan.write_plan(cfg.layout(), plan.plan_inputs(cfg))


@task(name="seed-from-base")
def seed_from_base(cfg: BuildConfig, base_version: str) -> dict[str, int]:
    """Incremental build: link the base version's finished work for unchanged inputs into this version."""
    if base_version == "latest":
        base_version = lineage.latest_complete_version(build.lineage_db(cfg), exclude=cfg.version)
    reused = seed_version(cfg.layout().data_root.version(base_version), cfg)
    get_run_logger().info("reused from %s: %s partitions per stage", base_version, reused)
    return reused


@task(name="load-lineage")
def load_lineage(cfg: BuildConfig) -> int:
    """Load every stats file of the version into DuckDB (the single writer)."""
    return lineage.load_version(build.lineage_db(cfg), cfg.version, cfg.version_dir())


@task(name="finish-version")
def finish_version(cfg: BuildConfig, status: str = "complete") -> None:
    """Record the version's final status; a complete version also gets its COMPLETE marker."""
    if status == "complete":
        build.mark_complete(cfg)
    lineage.set_version_status(build.lineage_db(cfg), cfg.version, status, cfg.config_hash(), cfg.root)


@task(name="check-source-yields")
def check_source_yields(cfg: BuildConfig) -> list[str]:
    """Fail the build when a whole source gave no valid row; log a warning per empty input."""
    warnings = ingest.check_yields(cfg.layout(), cfg)
    for line in warnings:
        get_run_logger().warning("%s", line)
    return warnings


@task(name="forecast-build")
def forecast_build(cfg: BuildConfig, gpus: int = 1) -> dict:
    """Forecast the build from its inputs and save it in the version folder (compared with actuals later)."""
    fc = forecast.forecast(forecast.count_rows(cfg), forecast.load_rates(), cfg.dask.n_workers, gpus)
    write_json(cfg.layout().forecast_file, fc)
    return fc

"""Thin Prefect tasks of a build's bookkeeping: version folder, plan, incremental seed, lineage, status.

``check_build`` is a plain function: it runs before the version exists, so a build that cannot start
leaves no version (no folder, no ``running`` or ``failed`` record) behind.
"""

from __future__ import annotations

import json

from prefect import get_run_logger, task

from rs5m.config import BuildConfig, load_build_config
from rs5m.core import version as build
from rs5m.core.io import write_json
from rs5m.lineage import store as lineage
from rs5m.pipeline import forecast, ingest, plan
from rs5m.pipeline.incremental import seed_version
from rs5m.pipeline.preflight import require_inputs
from tasks.scheduler import check_scheduler


def resolve_base(cfg: BuildConfig, base_version: str) -> str:
    """The complete version an incremental build reuses (``latest``: the newest other than this one);
    ``ValueError`` saying where it looked when there is none."""
    root = cfg.layout().data_root
    if base_version == "latest":
        try:
            return lineage.latest_complete_version(root.lineage_db, exclude=cfg.version)
        except (FileNotFoundError, ValueError):
            raise ValueError(
                f"no complete version to build incrementally from under {root.path} "
                f"(lineage database {root.lineage_db}): build one first (build-rs5m/sample or "
                "build-rs5m/full), or name one with base_version"
            ) from None
    layout = root.version(base_version)
    if not layout.complete_marker.exists():
        state = "is not complete" if layout.dir.is_dir() else "does not exist"
        found = [v for v in root.version_names() if root.version(v).complete_marker.exists()]
        raise ValueError(
            f"base version {base_version!r} {state} under {root.versions_dir} "
            f"(complete versions there: {', '.join(found) or 'none'})"
        )
    return base_version


def check_build(
    config: str, root: str | None, version: str | None, dask_address: str | None, base_version: str | None
) -> tuple[BuildConfig, str | None, int]:
    """Load and check everything a build needs before its version is created: the config, its inputs (the
    pre-flight of ``rs5m inputs check``: every problem, not the first), the Dask scheduler it names, the
    base version. Return the
    config, the resolved base version and the number of input files."""
    cfg = load_build_config(config, root=root, version=version, dask_address=dask_address)
    n = sum(len(s.files) for s in require_inputs(cfg).sources)
    if cfg.dask.address:  # a deployment run too: no version is created for a scheduler that is not there
        check_scheduler(cfg.dask.address)
    base = resolve_base(cfg, base_version) if base_version else None
    if base == cfg.version:
        raise ValueError(f"base_version {base!r} is the version being built; name another one")
    return cfg, base, n


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
    """Incremental build: link the base version's finished work for unchanged inputs into this version;
    log how much was reused (``reused 13 of 13 partitions from sample``)."""
    reused = seed_version(cfg.layout().data_root.version(base_version), cfg)
    get_run_logger().info("%s", reuse_message(reused, len(plan.plan_inputs(cfg)), base_version))
    return reused


def reuse_message(reused: dict[str, int], total: int, base_version: str) -> str:
    """``reused 13 of 13 partitions from sample (ingest 13, keyword 13, ...)``: the first stage's count of
    ``seed_version``'s result is the number of unchanged inputs whose work was reused."""
    stages = ", ".join(f"{k} {v}" for k, v in reused.items() if k != "scores")
    whole = "; dedup decisions and outlier scores reused too" if reused.get("scores") else ""
    first = next((v for k, v in reused.items() if k != "scores"), 0)
    return f"reused {first} of {total} partitions from {base_version} ({stages}){whole}"


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
    """Forecast the build from its inputs and save it in the version folder (compared with actuals later).

    Made once, before the version's first run: a rerun or resume keeps it (and writes nothing)."""
    path = cfg.layout().forecast_file
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    fc = forecast.forecast(forecast.count_rows(cfg), forecast.load_rates(), cfg.dask.n_workers, gpus)
    write_json(path, fc)
    return fc

"""Flow ``pipeline``: every stage of one build on one Dask task runner, composed from the stage registry.

PUB11 plan -> the PUB11 stages in registry order (partition stages streamed per batch of partitions,
barriers once) -> RS3 and PUB11 geo metadata (``flows.rs3.compose_rs3``) -> packaging (PUB11, then RS3:
both update the same manifests). ``build-rs5m`` runs it as its one subflow, so the Dask cluster starts once
per build; progress artifacts go to the build's own run (``report_to``).
"""

from __future__ import annotations

from uuid import UUID

from prefect import flow

from flows._compose import run_barrier, run_stages
from flows.rs3 import compose_rs3
from rs5m.config import BuildConfig
from rs5m.core.schema import StageName
from rs5m.pipeline import registry
from tasks.build import check_source_yields, forecast_build, plan_inputs


@flow(name="pipeline")
def pipeline(cfg: BuildConfig, report_to: UUID | None = None) -> None:
    """Run every stage of the build ``cfg`` (see the module docstring); stats land in the version folder."""
    parts = plan_inputs(cfg)
    forecast_build(cfg)
    sources = sorted({s.name for s in cfg.sources})
    stages = [s for s in registry.PUB11 if s.name != StageName.PACKAGE]
    run_stages([s for s in stages if s.kind == "partition"], cfg, parts, sources, report_to)
    check_source_yields(cfg)
    run_stages([s for s in stages if s.kind == "barrier"], cfg, parts, sources, report_to)
    compose_rs3(cfg, report_to)
    run_barrier(registry.stage(StageName.PACKAGE, "pub11"), cfg, sources)
    if cfg.rs3 is not None:
        rs3_sources = sorted({s.name for s in cfg.rs3.sources})
        run_barrier(registry.stage(StageName.PACKAGE, "rs3"), cfg, rs3_sources)

"""Flow ``pipeline``: every stage of one build on one Dask task runner, composed from the stage registry.

PUB11 plan -> the PUB11 stages in registry order (partition stages per partition, barriers once) -> RS3
and PUB11 geo metadata (``flows.rs3.compose_rs3``) -> packaging (PUB11, then RS3: both update the same
manifests). ``build-rs5m`` runs it as its one subflow, so the Dask cluster starts once per build.
"""

from __future__ import annotations

from prefect import flow

from flows._compose import run_stage
from flows.rs3 import compose_rs3
from rs5m.config import BuildConfig
from rs5m.core.schema import StageName
from rs5m.pipeline import registry
from tasks.build import plan_inputs


@flow(name="pipeline")
def pipeline(cfg: BuildConfig) -> None:
    """Run every stage of the build ``cfg`` (see the module docstring); stats land in the version folder."""
    parts = plan_inputs(cfg)
    sources = sorted({s.name for s in cfg.sources})
    for stage in registry.PUB11:
        if stage.name != StageName.PACKAGE:
            run_stage(stage, cfg, parts, sources)
    compose_rs3(cfg)
    run_stage(registry.stage(StageName.PACKAGE, "pub11"), cfg, parts, sources)
    if cfg.rs3 is not None:
        run_stage(
            registry.stage(StageName.PACKAGE, "rs3"), cfg, parts, sorted({s.name for s in cfg.rs3.sources})
        )

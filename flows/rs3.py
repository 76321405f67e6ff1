"""RS3 in a build: plan, read -> caption (GPU workers) per partition, PUB11 geo metadata.

``compose_rs3`` runs inside the build's pipeline flow (on its Dask task runner), after the PUB11 stages
(PUB11 geo metadata reads their keyword candidates). Flow ``rs3`` runs the same on its own, for a config
whose RS3 part is to be captioned without a PUB11 build. Returns every stats dict written.
"""

from __future__ import annotations

from uuid import UUID

from prefect import flow, get_run_logger

from flows._compose import run_partition_stages
from rs5m.config import BuildConfig
from rs5m.core.schema import StageName
from rs5m.pipeline import registry
from rs5m.rs3.pub11 import pub11_partitions
from tasks.rs3 import plan_rs3, report_geo


def compose_rs3(cfg: BuildConfig, report_to: UUID | None = None) -> list[dict]:
    """The RS3 stages of the registry over the RS3 plan, then PUB11 geo metadata (call from a flow)."""
    rs3 = cfg.rs3
    if rs3 is None:
        return []
    vdir = str(cfg.version_dir())
    parts = plan_rs3(rs3, vdir)
    get_run_logger().info("rs3: %d partitions over %s", len(parts), [s.name for s in rs3.sources])
    results = run_partition_stages(registry.partition_stages("rs3"), cfg, parts, report_to)
    if rs3.pub11_meta:
        pub_parts = pub11_partitions(vdir, rs3.pub11_stage)
        geometa = registry.stage(StageName.META_CAPTION, "geometa")
        results += run_partition_stages([geometa], cfg, pub_parts, report_to)
    return results


@flow(name="rs3")
def rs3(cfg: BuildConfig) -> list[dict]:
    """Caption the RS3 datasets of ``cfg``, build PUB11 meta-captions and the geo report (an artifact of this
    run); see the module docstring."""
    results = compose_rs3(cfg)
    report_geo(str(cfg.version_dir()), cfg.version)
    return results

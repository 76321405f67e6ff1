"""Run registry stages in this process, one unit after another: for tests, benchmarks and debugging.

The orchestrated path is the ``build-rs5m`` flow (Prefect + Dask); this runs the same stage functions in
the same order over the same plan, without either, so a partial build can be reproduced in a debugger.
"""

from __future__ import annotations

from collections.abc import Iterable

from rs5m.config import BuildConfig
from rs5m.core.stats import PartitionStats
from rs5m.pipeline import plan
from rs5m.pipeline.registry import Stage


def run_local(cfg: BuildConfig, stages: Iterable[Stage]) -> list[PartitionStats]:
    """Plan ``cfg``'s inputs (the version folder must be prepared) and run ``stages`` in order."""
    layout = cfg.layout()
    parts = plan.write_plan(layout, plan.plan_inputs(cfg))
    sources = sorted({s.name for s in cfg.sources})
    out: list[PartitionStats] = []
    for stage in stages:
        if stage.kind == "partition":
            out += [stage.run_partition(layout, source, part, cfg) for source, part in parts]
        else:
            out += stage.run(layout, sources, cfg)
    return out

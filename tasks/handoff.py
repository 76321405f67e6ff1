"""Hand-off after a build: start downstream deployments (training, evaluation) with the new version.

``run_deployment`` rather than an automation: the hand-off is part of the build's own code and
history (visible as a task of the run, with the exact parameters passed), it is versioned with the
flow, and it works the same on a bare server without automation setup. ``timeout=0`` returns as soon
as the downstream run is scheduled; its work pool (``gpu``) picks it up.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.deployments import run_deployment

from rs5m.config import BuildConfig


@task(name="start-deployment", task_run_name="handoff-{name}")
def start_deployment(name: str, cfg: BuildConfig) -> str:
    """Schedule deployment ``name`` with ``version`` (and the data root) as parameters; return its run id."""
    run = run_deployment(name, parameters={"params": {"version": cfg.version, "root": cfg.root}}, timeout=0)
    get_run_logger().info("started %s for version %s: flow run %s", name, cfg.version, run.id)
    return str(run.id)

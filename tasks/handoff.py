"""Hand-off after a build: start downstream deployments (training, then its evaluation) on the new version.

``run_deployment`` rather than an automation: the hand-off is part of the build's own code and
history (visible as a task of the run, with the exact parameters passed), it is versioned with the
flow, and it works the same on a bare server without automation setup. ``timeout=0`` returns as soon
as the downstream run is scheduled; its work pool (``gpu``) picks it up.
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.deployments import run_deployment

from rs5m.config import BuildConfig


def handoff_parameters(cfg: BuildConfig) -> dict[str, str]:
    """What a downstream deployment is given: ``dataset_version`` and the absolute ``data_root``."""
    return {"dataset_version": cfg.version, "data_root": str(Path(cfg.root).resolve())}


@task(name="start-deployment", task_run_name="handoff-{name}")
def start_deployment(name: str, cfg: BuildConfig) -> str:
    """Schedule deployment ``name`` (``flow/deployment``, e.g. ``train-georsclip/sample``, whose flow trains
    on this version's shards and then evaluates the model) with ``handoff_parameters``; return its run id."""
    run = run_deployment(name, parameters=handoff_parameters(cfg), timeout=0)
    get_run_logger().info("started %s for version %s: flow run %s", name, cfg.version, run.id)
    return str(run.id)

"""Helpers shared by the Prefect task modules: artifact keys and Dask GPU routing."""

from __future__ import annotations

import re
from typing import Any

from prefect.context import FlowRunContext
from prefect_dask import DaskTaskRunner

GPU_RESOURCES = {"GPU": 1}


def artifact_key(text: str) -> str:
    """A valid Prefect artifact key (lower-case letters, digits and dashes) made from ``text``."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:100]


def flow_dask_client() -> Any | None:
    """The Dask client of the running flow's DaskTaskRunner, or None (another runner, or no flow)."""
    ctx = FlowRunContext.get()
    runner = ctx.task_runner if ctx is not None else None
    return runner.client if isinstance(runner, DaskTaskRunner) else None


def cluster_has_gpus(client: Any) -> bool:
    """Whether any worker connected to ``client``'s scheduler advertises a ``GPU`` resource."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {}).values()
    return any(float((w.get("resources") or {}).get("GPU", 0)) >= 1 for w in workers)


def gpu_resources(mode: str, client: Any | None = None) -> dict[str, float] | None:
    """Dask resources a GPU task asks for: ``mode`` "never" → None (any worker), "always" → GPU=1,
    "auto" → GPU=1 only when a worker of the flow's cluster advertises a GPU."""
    if mode == "never":
        return None
    if mode == "always":
        return dict(GPU_RESOURCES)
    client = client if client is not None else flow_dask_client()
    return dict(GPU_RESOURCES) if client is not None and cluster_has_gpus(client) else None

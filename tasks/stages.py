"""One thin Prefect task per registry stage (``rs5m.pipeline.registry``): names, retries, GPU placement.

A partition task runs ``stage.run(layout, source, partition, cfg)``; a barrier task
``stage.run(layout, sources, cfg)``; both return the stats as plain dicts. Format errors (``ValueError``,
e.g. a source file in the wrong layout) are not retried: they cannot succeed.
"""

from __future__ import annotations

import contextlib
import operator
from dataclasses import asdict
from typing import Any

import dask
from prefect import Task, task
from prefect.futures import PrefectFuture

from rs5m.config import BuildConfig
from rs5m.pipeline import registry
from rs5m.pipeline.registry import Stage
from tasks._common import gpu_resources


def _retryable(task_: Task, task_run: Any, state: Any) -> bool:
    """Retry only errors that may pass: never a ``ValueError`` (bad input, wrong format)."""
    try:
        state.result()
    except ValueError:
        return False
    except BaseException:
        return True
    return True


def _run_partition(stage: str, subset: str, cfg: BuildConfig, source: str, partition: str) -> dict:
    return asdict(registry.stage(stage, subset).run(cfg.layout(), source, partition, cfg))


def _run_barrier(stage: str, subset: str, cfg: BuildConfig, sources: list[str]) -> list[dict]:
    return [asdict(s) for s in registry.stage(stage, subset).run(cfg.layout(), sources, cfg)]


def _make(stage: Stage) -> Task:
    name = f"{stage.name.value}" if stage.subset == "pub11" else f"{stage.subset}-{stage.name.value}"
    if stage.kind == "partition":
        fn, run_name = _run_partition, f"{name}-{{source}}-{{partition}}"
    else:
        fn, run_name = _run_barrier, name
    return task(
        fn, name=name, task_run_name=run_name, retries=stage.retries, retry_delay_seconds=2,
        retry_condition_fn=_retryable,
    )  # fmt: skip


TASKS: dict[tuple[str, str], Task] = {(s.name.value, s.subset): _make(s) for s in registry.ALL}


def placement(stage: Stage, cfg: BuildConfig) -> contextlib.AbstractContextManager:
    """Dask annotations for submitting ``stage``'s tasks: GPU workers when its config says so."""
    if stage.gpu is None:
        return contextlib.nullcontext()
    resources = gpu_resources(operator.attrgetter(stage.gpu)(cfg))
    return dask.annotate(resources=resources) if resources else contextlib.nullcontext()


def submit_partitions(stage: Stage, cfg: BuildConfig, parts: list[tuple[str, str]]) -> list[PrefectFuture]:
    """Submit ``stage`` for every ``(source, partition)`` (call from a flow)."""
    run = TASKS[(stage.name.value, stage.subset)]
    with placement(stage, cfg):
        return [run.submit(stage.name.value, stage.subset, cfg, src, part) for src, part in parts]


def submit_barrier(stage: Stage, cfg: BuildConfig, sources: list[str]) -> PrefectFuture:
    """Submit ``stage`` over ``sources`` (call from a flow)."""
    with placement(stage, cfg):
        return TASKS[(stage.name.value, stage.subset)].submit(stage.name.value, stage.subset, cfg, sources)

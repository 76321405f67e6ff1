"""Thin Prefect tasks over the stage registry (``rs5m.pipeline.registry``): names, retries, GPU placement.

A *segment* task runs consecutive partition stages (``stage.run(layout, source, partition, cfg)`` each, in
order) over a batch of partitions; a barrier task runs ``stage.run(layout, sources, cfg)``; both return the
stats as plain dicts. A retried batch redoes only its unfinished partitions (done markers). Format errors
(``ValueError``, e.g. a source file in the wrong layout) are not retried: they cannot succeed.
"""

from __future__ import annotations

import contextlib
import functools
import operator
from collections.abc import Sequence
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


def _run_segment(
    stages: list[str], subset: str, cfg: BuildConfig, parts: list[tuple[str, str]]
) -> list[dict]:
    layout, out = cfg.layout(), []
    for source, partition in parts:
        for name in stages:
            out.append(asdict(registry.stage(name, subset).run_partition(layout, source, partition, cfg)))
    return out


def _run_barrier(stage: str, subset: str, cfg: BuildConfig, sources: list[str]) -> list[dict]:
    return [asdict(s) for s in registry.stage(stage, subset).run(cfg.layout(), sources, cfg)]


def _label(stages: Sequence[Stage]) -> str:
    name = "+".join(s.name.value for s in stages)
    return name if stages[0].subset == "pub11" else f"{stages[0].subset}-{name}"


@functools.cache
def _segment_task(stages: tuple[Stage, ...]) -> Task:
    name = _label(stages)
    return task(
        _run_segment, name=name, task_run_name=f"{name}-{{parts[0][0]}}-{{parts[0][1]}}",
        retries=max(s.retries for s in stages), retry_delay_seconds=2, retry_condition_fn=_retryable,
    )  # fmt: skip


BARRIER_TASKS: dict[tuple[str, str], Task] = {
    (s.name.value, s.subset): task(
        _run_barrier,
        name=_label([s]),
        retries=s.retries,
        retry_delay_seconds=2,
        retry_condition_fn=_retryable,
    )
    for s in registry.ALL
    if s.kind == "barrier"
}


def placement(stage: Stage, cfg: BuildConfig, priority: int = 0) -> contextlib.AbstractContextManager:
    """Dask annotations for submitting ``stage``'s tasks: GPU workers when its config says so, and a
    ``priority`` (later segments of a partition chain higher, so a batch's scoring does not wait behind
    every remaining download)."""
    resources = gpu_resources(operator.attrgetter(stage.gpu)(cfg)) if stage.gpu else None
    annotations: dict[str, Any] = {"priority": priority} if priority else {}
    if resources:
        annotations["resources"] = resources
    return dask.annotate(**annotations) if annotations else contextlib.nullcontext()


def submit_segment(
    stages: Sequence[Stage], cfg: BuildConfig, parts: list[tuple[str, str]], priority: int = 0
) -> PrefectFuture:
    """Submit consecutive partition stages over one batch of partitions as one task (call from a flow)."""
    with placement(stages[0], cfg, priority):
        names = [s.name.value for s in stages]
        return _segment_task(tuple(stages)).submit(names, stages[0].subset, cfg, parts)


def submit_barrier(stage: Stage, cfg: BuildConfig, sources: list[str]) -> PrefectFuture:
    """Submit ``stage`` over ``sources`` (call from a flow)."""
    with placement(stage, cfg):
        return BARRIER_TASKS[(stage.name.value, stage.subset)].submit(
            stage.name.value, stage.subset, cfg, sources
        )

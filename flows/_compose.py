"""Compose a flow from the stage registry: submit a stage's tasks, wait, and say how it went."""

from __future__ import annotations

import time
from typing import Any

from prefect import get_run_logger
from prefect.futures import PrefectFuture, as_completed

from rs5m.config import BuildConfig
from rs5m.pipeline.registry import Stage
from tasks.stages import submit_barrier, submit_partitions


def wait_all(futures: list[PrefectFuture], label: str) -> list[Any]:
    """Results in completion order, logging progress; raises the first failed unit's own error."""
    logger = get_run_logger()
    results = []
    step = max(1, len(futures) // 10)
    for i, future in enumerate(as_completed(futures), 1):
        results.append(future.result())
        if i == len(futures) or i % step == 0:
            logger.info("%s: %d/%d partitions done", label, i, len(futures))
    return results


def _reused(stage: Stage, cfg: BuildConfig, units: list[tuple[str, str]]) -> int:
    layout = cfg.layout()
    return sum(layout.stats(stage.name, src, part).exists() for src, part in units)


def run_stage(stage: Stage, cfg: BuildConfig, parts: list[tuple[str, str]], sources: list[str]) -> list[Any]:
    """Run one registry stage over the build's partitions (or, for a barrier, over ``sources``).

    No future is kept past its stage: Dask recomputes a lost worker's held results, and a finished stage
    rerun under a later one would change that stage's input under it.
    """
    logger, start = get_run_logger(), time.monotonic()
    label = stage.name.value if stage.subset == "pub11" else f"{stage.subset} {stage.name.value}"
    units = parts if stage.kind == "partition" else [(s, "global") for s in sources]
    done = _reused(stage, cfg, units)
    logger.info("%s: start, %d %s (%d already done)", label, len(units), stage.kind + "s", done)
    if stage.kind == "partition":
        results = wait_all(submit_partitions(stage, cfg, parts), label)
    else:
        results = submit_barrier(stage, cfg, sources).result()
    logger.info("%s: finished in %.1f s", label, time.monotonic() - start)
    return results

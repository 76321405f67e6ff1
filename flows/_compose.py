"""Compose a flow from the stage registry: partition stages streamed per batch, barriers once, progress.

Consecutive partition stages with the same placement form a *segment* that runs as one task per batch of
partitions (``download`` + ``validity`` on CPU workers, then ``outlier_score`` on GPU workers): a batch's
next segment is submitted as soon as its previous one finishes, so batch k is scored while batch k+1
downloads; only barriers wait for every batch. A task carries a batch, not a partition, so the
orchestration cost per partition stays small with thousands of them (``DaskConfig.partitions_per_task``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import ProgressArtifact, update_progress_artifact
from prefect.futures import PrefectFuture, as_completed
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from rs5m.config import BuildConfig
from rs5m.pipeline.registry import Stage
from tasks._common import artifact_key
from tasks.stages import submit_barrier, submit_segment


def batches(parts: list[tuple[str, str]], cfg: BuildConfig) -> list[list[tuple[str, str]]]:
    """Split partitions into task batches: ``partitions_per_task``, or (auto) ~4 batches per worker."""
    size = cfg.dask.partitions_per_task
    if size is None:
        size = max(1, min(64, math.ceil(len(parts) / (4 * cfg.dask.n_workers))))
    return [parts[i : i + size] for i in range(0, len(parts), size)]


def segments(stages: Sequence[Stage]) -> list[list[Stage]]:
    """Consecutive partition stages grouped by placement (a GPU stage never shares a task with CPU ones)."""
    out: list[list[Stage]] = []
    for stage in stages:
        if out and (out[-1][-1].gpu is None) == (stage.gpu is None):
            out[-1].append(stage)
        else:
            out.append([stage])
    return out


_BAR: RichProgress | None = None


def _terminal_bar() -> RichProgress | None:
    """One live terminal progress display for the process when ``RS5M_PROGRESS=bar`` (``rs5m build`` sets it
    on a terminal); bars with rate and ETA, one per segment."""
    global _BAR
    if os.environ.get("RS5M_PROGRESS") != "bar":
        return None
    if _BAR is None:
        _BAR = RichProgress(
            TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TextColumn("partitions"),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=Console(stderr=True),
        )  # fmt: skip
        _BAR.start()
    return _BAR


def stop_terminal_bar() -> None:
    """Stop the live terminal display (the CLI calls it when the build returns)."""
    global _BAR
    if _BAR is not None:
        _BAR.stop()
        _BAR = None


class Progress:
    """Per segment: a log line every ~10 %, a progress artifact on ``flow_run_id`` (the build's run) and,
    on a terminal (``RS5M_PROGRESS=bar``), a live bar with rate and ETA."""

    def __init__(self, label: str, total: int, cfg: BuildConfig, flow_run_id: UUID | None) -> None:
        self.label, self.total, self.done, self.start = label, total, 0, time.monotonic()
        self.step = max(1, total // 10)
        self.bar = _terminal_bar()
        self.bar_id = self.bar.add_task(label, total=total, rate="") if self.bar is not None else None
        key = artifact_key(f"progress-{cfg.version}-{label}")
        art = ProgressArtifact(
            key=key, progress=0.0, description=f"{label}: partitions done, version {cfg.version}"
        )
        if flow_run_id is not None:
            art.flow_run_id = flow_run_id
        self.artifact_id = art.create().id if total else None

    def advance(self, n: int) -> None:
        """``n`` more partitions done."""
        self.done += n
        if self.artifact_id is not None:
            update_progress_artifact(self.artifact_id, 100.0 * self.done / self.total)
        rate = self.done / max(time.monotonic() - self.start, 1e-9)
        if self.bar is not None:
            self.bar.update(self.bar_id, completed=self.done, rate=f"{rate:.2f}/s")
        if self.done == self.total or self.done // self.step != (self.done - n) // self.step:
            eta = (self.total - self.done) / rate if rate else float("inf")
            get_run_logger().info(
                "%s: %d/%d partitions done (%.2f/s, ~%.0f s left)",
                self.label,
                self.done,
                self.total,
                rate,
                eta,
            )


def _done(stages: Sequence[Stage], cfg: BuildConfig, parts: list[tuple[str, str]]) -> int:
    layout = cfg.layout()
    return sum(all(layout.stats(n, s, p).exists() for st in stages for n in st.records) for s, p in parts)


def run_partition_stages(
    stages: Sequence[Stage], cfg: BuildConfig, parts: list[tuple[str, str]], flow_run_id: UUID | None = None
) -> list[dict[str, Any]]:
    """Run consecutive partition stages over ``parts``, streamed by batch (see the module docstring).

    Returns every stats dict. No future is kept past its segment: Dask recomputes a lost worker's held
    results, and a finished segment rerun under a later one would change that segment's input under it.
    """
    logger, groups, results = get_run_logger(), segments(stages), []
    work = batches(parts, cfg)
    reused = _done(stages, cfg, parts)
    names = " -> ".join("+".join(s.name.value for s in g) for g in groups)
    logger.info(
        "%s: start, %d partitions in %d tasks (%d already done)", names, len(parts), len(work), reused
    )
    progress = [Progress("+".join(s.name.value for s in g), len(parts), cfg, flow_run_id) for g in groups]
    futures: dict[PrefectFuture, list[tuple[str, str]]] = {submit_segment(groups[0], cfg, b): b for b in work}
    for i in range(len(groups)):
        following: dict[PrefectFuture, list[tuple[str, str]]] = {}
        for future in as_completed(list(futures)):
            results += future.result()
            batch = futures[future]
            progress[i].advance(len(batch))
            if i + 1 < len(groups):
                following[submit_segment(groups[i + 1], cfg, batch, priority=i + 1)] = batch
        futures = following
    return results


def run_barrier(stage: Stage, cfg: BuildConfig, sources: list[str]) -> list[dict[str, Any]]:
    """Run one barrier over ``sources`` and log its start and end."""
    logger, start = get_run_logger(), time.monotonic()
    label = stage.name.value if stage.subset == "pub11" else f"{stage.subset} {stage.name.value}"
    logger.info("%s: start, %d sources", label, len(sources))
    results = submit_barrier(stage, cfg, sources).result()
    logger.info("%s: finished in %.1f s", label, time.monotonic() - start)
    return results


def run_stages(
    stages: Sequence[Stage],
    cfg: BuildConfig,
    parts: list[tuple[str, str]],
    sources: list[str],
    flow_run_id: UUID | None = None,
) -> list[dict[str, Any]]:
    """Run registry stages in order: runs of partition stages streamed together, barriers between them."""
    results: list[dict[str, Any]] = []
    run: list[Stage] = []
    for stage in [*stages, None]:
        if stage is not None and stage.kind == "partition":
            run.append(stage)
            continue
        if run:
            results += run_partition_stages(run, cfg, parts, flow_run_id)
            run = []
        if stage is not None:
            results += run_barrier(stage, cfg, sources)
    return results

"""Thin Prefect tasks of the RS3 subflow: plan, read, caption (GPU workers), PUB11 geometa, reports.

GPU placement: ``submit_captioning`` submits ``caption_rs3`` inside ``dask.annotate(resources={"GPU": 1})``
when ``RS3Config.dask_gpu`` says so ("auto": when a worker of the flow's DaskTaskRunner advertises
``GPU``; "always"; "never"), so only workers started with ``--resources GPU=1`` caption, one partition
at a time per GPU, each loading the models once (``rs5m.ml.captioner.get_captioner``).
"""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path
from typing import Any

import dask
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture

from rs5m.config import RS3Config
from rs5m.lineage import store as lineage
from rs5m.rs3 import pub11, report, stage
from tasks._common import artifact_key, gpu_resources


def caption_resources(cfg: RS3Config, client: Any | None = None) -> dict[str, float] | None:
    """The Dask resources caption tasks ask for, or None for "any worker"."""
    return gpu_resources(cfg.dask_gpu, client)


@task(name="plan-rs3")
def plan_rs3(cfg: RS3Config, version_dir: str) -> list[tuple[str, str]]:
    """List the RS3 datasets and split them into partitions (kept if already planned)."""
    return stage.plan_partitions(version_dir, cfg)


@task(name="read-rs3", retries=1, retry_delay_seconds=2, task_run_name="rs3-read-{source}-{part}")
def read_rs3(cfg: RS3Config, version_dir: str, source: str, part: str) -> dict:
    """Read one RS3 partition (files, metadata, meta-captions); returns its stats."""
    return stage.stats_dict(stage.read_partition(version_dir, source, part, cfg))


@task(name="caption-rs3", retries=1, retry_delay_seconds=5, task_run_name="rs3-caption-{source}-{part}")
def caption_rs3(cfg: RS3Config, version_dir: str, source: str, part: str) -> dict:
    """Caption one RS3 partition with BLIP-2 and the CLIP rankers; returns its stats."""
    return stage.stats_dict(stage.caption_partition(version_dir, source, part, cfg))


def submit_captioning(
    cfg: RS3Config, version_dir: str, parts: list[tuple[str, str]], reads: list[PrefectFuture]
) -> list[PrefectFuture]:
    """Submit ``caption_rs3`` per partition after its read, on GPU workers when they apply."""
    resources = caption_resources(cfg)
    ctx = dask.annotate(resources=resources) if resources else contextlib.nullcontext()
    with ctx:
        return [
            caption_rs3.submit(cfg, version_dir, source, part, wait_for=[read])
            for (source, part), read in zip(parts, reads, strict=True)
        ]


@task(name="pub11-geometa", retries=1, task_run_name="geometa-{source}-{part}")
def pub11_geometa(cfg: RS3Config, version_dir: str, source: str, part: str) -> list[dict]:
    """Meta-captions and place names of one PUB11 partition; returns its two stats."""
    return [stage.stats_dict(s) for s in pub11.pub11_meta_partition(version_dir, source, part, cfg)]


@task(name="report-geo")
def report_geo(version_dir: str, version: str | None = None) -> dict[str, str]:
    """Geo statistics, place counts and the world map; published as a Markdown artifact with the map."""
    paths = report.geo_report(version_dir)
    png = base64.b64encode(Path(paths["map"]).read_bytes()).decode("ascii")
    text = Path(paths["markdown"]).read_text(encoding="utf-8")
    name = version or Path(version_dir).name
    create_markdown_artifact(
        key=artifact_key(f"rs3-geo-{name}"),
        markdown=f"![world map](data:image/png;base64,{png})\n\nMap file: `{paths['map']}`\n\n{text}",
        description=f"RS3 + PUB11 geo statistics of version {name}",
    )
    return paths


@task(name="publish-rs3-funnel")
def publish_rs3_funnel(db_path: str, version: str) -> list[dict]:
    """After the lineage load: publish the RS3 funnel, its reasons and PUB11 geometa coverage as tables."""
    with lineage.connect(db_path, read_only=True) as con:
        rows = report.rs3_funnel_rows(con, version)
        geometa = report.geometa_rows(con, version)
        reasons = [r for r in lineage.reason_rows(con, version) if r["subset"] == stage.SUBSET]
    if rows:
        create_table_artifact(
            key=artifact_key(f"rs3-funnel-{version}"), table=rows, description=f"RS3 funnel of {version}"
        )
        create_table_artifact(
            key=artifact_key(f"rs3-reasons-{version}"), table=reasons, description="RS3 failures"
        )
    if geometa:
        create_table_artifact(
            key=artifact_key(f"geometa-{version}"), table=geometa, description="PUB11 geometa coverage"
        )
    return rows

"""Prefect tasks of RS3 beyond the registry's stages: the plan, the geo report and the RS3 funnel artifacts.

Read, caption (GPU workers when ``RS3Config.dask_gpu`` says so) and PUB11 geometa run as registry stages
(``tasks.stages``); each caption worker loads the models once (``rs5m.ml.captioner.get_captioner``).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from rs5m.config import RS3Config
from rs5m.lineage import store as lineage
from rs5m.rs3 import report, stage
from tasks._common import artifact_key, gpu_resources


def caption_resources(cfg: RS3Config, client: Any | None = None) -> dict[str, float] | None:
    """The Dask resources caption tasks ask for, or None for "any worker"."""
    return gpu_resources(cfg.dask_gpu, client)


@task(name="plan-rs3")
def plan_rs3(cfg: RS3Config, version_dir: str) -> list[tuple[str, str]]:
    """List the RS3 datasets and split them into partitions (kept if already planned)."""
    return stage.plan_partitions(version_dir, cfg)


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

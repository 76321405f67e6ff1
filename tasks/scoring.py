"""Prefect tasks of the outlier stage beyond the registry's: the keep grid artifact, the RS detector.

Scoring and the decision run as registry stages (``tasks.stages``); GPU placement of scoring follows
``ScoringConfig.dask_gpu`` ("auto" = when a worker of the flow's DaskTaskRunner advertises ``GPU``;
"always"; "never"): prefect-dask passes Dask's annotations to the scheduler, so only workers started with
``--resources GPU=1`` run those tasks, one at a time per GPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from rs5m.config import DetectorConfig, OutlierConfig, ScoringConfig
from rs5m.pipeline.outlier import decision as outlier
from tasks._common import GPU_RESOURCES, artifact_key, cluster_has_gpus, flow_dask_client  # noqa: F401
from tasks._common import gpu_resources as _gpu_resources


def gpu_resources(cfg: ScoringConfig, client: Any | None = None) -> dict[str, float] | None:
    """The Dask resources scoring tasks should ask for, or None for "any worker"."""
    return _gpu_resources(cfg.dask_gpu, client)


def _grid_markdown(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    head = ["s_vlm top % \\ c_rs top %", *(c.removeprefix("rs_top_") for c in cols[1:])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(f"{r[c]:,}" if c != cols[0] else r[c] for c in cols) + " |" for r in rows]
    return "\n".join(lines)


@task(name="publish-outlier-grid")
def publish_outlier_grid(
    version_dir: str, sources: list[str], cfg: OutlierConfig, version: str
) -> list[dict]:
    """Publish the keep-count grid (RS5M Fig. 13 layout) as table and Markdown artifacts; return its rows."""
    rows = outlier.keep_grid(Path(version_dir), sources, cfg)
    desc = (
        f"Outlier keep grid of version {version}: rows keep the top s_vlm %, columns the top c_rs %, "
        f"cells count kept images pooled over all sources (chosen: {cfg.keep_top_vlm:g}, {cfg.keep_top_rs:g})"
    )
    create_table_artifact(key=artifact_key(f"outlier-grid-{version}"), table=rows, description=desc)
    create_markdown_artifact(
        key=artifact_key(f"outlier-grid-{version}-md"), markdown=_grid_markdown(rows), description=desc
    )
    return rows


@task(name="train-detector")
def train_rs_detector(pos_dir: str, neg_dir: str, out_dir: str, cfg: DetectorConfig) -> dict[str, Any]:
    """Train the RS detector; returns its metrics (val/test accuracy, checkpoint path)."""
    from rs5m.ml.detector_train import train_detector  # torch: imported when training, not by the build

    return train_detector(pos_dir, neg_dir, out_dir, cfg)


@task(name="publish-detector-metrics")
def publish_detector_metrics(metrics: dict[str, Any], name: str) -> None:
    """Publish the detector's accuracies and split sizes as a table artifact."""
    rows = [
        {"split": split, "images": metrics["n"][split], "rs": metrics["n_rs"][split],
         "accuracy": metrics.get(f"{split}_accuracy")}
        for split in ("train", "val", "test")
    ]  # fmt: skip
    model = f"{metrics['backbone']} {metrics['model_name']}"
    desc = f"RS detector {name}: {model}, checkpoint {metrics['checkpoint']}"
    create_table_artifact(key=artifact_key(f"rs-detector-{name}"), table=rows, description=desc)

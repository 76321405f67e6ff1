"""Prefect tasks of the ``train-georsclip`` flow: train (or resume), publish curves, evaluation hand-off."""

from __future__ import annotations

import base64
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from rs5m.config.train import TrainConfig, load_train_config
from rs5m.core.layout import DataRoot
from rs5m.ml.training.export import read_export
from rs5m.ml.training.identity import run_key
from rs5m.ml.training.launch import launch
from rs5m.ml.training.metrics import METRICS_NAME, read_metrics
from tasks._common import artifact_key

MAX_TABLE_ROWS = 200


@task(name="train-model", task_run_name="train-{cfg.model.name}")
def train_model(cfg: TrainConfig, nproc: int | None = None) -> dict[str, Any]:
    """Train or resume ``cfg`` to the end (torchrun on several GPUs); logged steps go to the run log."""
    logger = get_run_logger()

    def on_step(step: int, row: dict[str, Any]) -> None:
        if row:
            logger.info(
                "step %d loss %.4f lr %.3g %.1f samples/s", step, row["loss"], row["lr"], row["samples_per_s"]
            )

    result = launch(cfg, nproc, on_step=on_step)
    if result.new_steps == 0:
        logger.info("nothing to train: the run in %s was complete at step %d", cfg.output_dir, result.steps)
    else:
        new = "" if result.new_steps is None else f"{result.new_steps} new steps, "
        logger.info("trained %s%d in all; model %s", new, result.steps, result.files.get("model"))
    return asdict(result)


@task(name="publish-training")
def publish_training(result: dict[str, Any], label: str) -> None:
    """Publish the loss curve (PNG inline) and the per-step metrics table as artifacts."""
    rows = read_metrics(Path(result["output_dir"]) / METRICS_NAME)
    every = max(1, len(rows) // MAX_TABLE_ROWS)
    table = [
        {k: r.get(k) for k in ("step", "epoch", "loss", "lr", "samples_per_s", "logit_scale")}
        for r in rows[::every]
    ]
    key = artifact_key(f"train-{label}")
    desc = f"GeoRSCLIP training {label}: loss, lr and samples/s per logged step"
    if table:
        create_table_artifact(key=f"{key}-metrics", table=table, description=desc)
    lines = [f"## Training {label}", "", f"- steps: {result['steps']}"]
    lines += [f"- {k}: {v}" for k, v in (result.get("metrics") or {}).items()]
    lines += [f"- {k}: `{v}`" for k, v in result["files"].items()]
    curve = result["files"].get("loss_curve")
    if curve and Path(curve).is_file():
        data = base64.b64encode(Path(curve).read_bytes()).decode("ascii")
        lines += ["", f"![loss curve](data:image/png;base64,{data})"]
    create_markdown_artifact(key=f"{key}-loss", markdown="\n".join(lines) + "\n", description=desc)


def train_config(
    config: str,
    dataset_version: str | None,
    data_root: str,
    overrides: dict[str, Any],
    output_dir: str | None = None,
) -> TrainConfig:
    """The TrainConfig of a ``train-georsclip`` run: the YAML with ``overrides`` (dotted keys); a dataset
    version (with no ``data.shards`` override) selects its open_clip shards under ``data_root``.

    The run folder is ``output_dir`` when given, else ``<data_root>/train-runs/<version>-<hash>``
    (``rs5m.ml.training.identity.run_key``): a run on other data or settings never lands in, or resumes,
    this one's folder. ``ValueError`` when the version is not a complete version under ``data_root``.
    """
    root = DataRoot.of(data_root)
    over = dict(overrides)
    if dataset_version is not None:
        over["data.version"] = dataset_version
        if over.get("data.shards") is None:
            layout = root.version(dataset_version)
            if not layout.complete_marker.exists():
                done = [v for v in root.version_names() if root.version(v).complete_marker.exists()]
                raise ValueError(
                    f"dataset version {dataset_version!r} is not a complete version under "
                    f"{root.versions_dir} (complete versions there: {', '.join(done) or 'none'})"
                )
            over["data.shards"] = str(layout.package_dir("open_clip"))
    cfg = load_train_config(config, over)
    out = output_dir or str((root.train_runs_dir / run_key(cfg)).resolve())
    return cfg.model_copy(update={"output_dir": os.path.abspath(out)})


def evaluation_config(eval_yaml: str, result: dict[str, Any]) -> dict[str, Any]:
    """Parameters of ``evaluate-georsclip`` that point ``eval_yaml`` at the run's exported model (QuickGELU
    and normalisation as trained), with results under ``<run>/eval``."""
    doc = read_export(result["output_dir"])
    return {
        "config": eval_yaml,
        "model": doc["model"]["name"],
        "checkpoint": doc["files"]["model"],
        "quick_gelu": doc["model"]["quick_gelu"],
        "image_norm": doc["model"].get("image_norm", "clip"),
        "output_dir": str(Path(result["output_dir"]) / "eval"),
    }

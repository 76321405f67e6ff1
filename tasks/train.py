"""Prefect tasks of the ``train-georsclip`` flow: train (or resume), publish curves, evaluation hand-off."""

from __future__ import annotations

import base64
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from rs5m.config.evaluate import EvalConfig, ModelSpec, load_eval_config
from rs5m.config.train import TrainConfig
from rs5m.ml.training.export import read_export
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
    logger.info("trained %d steps; model %s", result.steps, result.files.get("model"))
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


def evaluation_config(eval_yaml: str, result: dict[str, Any], label: str) -> EvalConfig:
    """The evaluation config of ``eval_yaml`` pointed at the run's exported model (QuickGELU as trained)."""
    doc = read_export(result["output_dir"])
    base = load_eval_config(eval_yaml)
    model = ModelSpec(
        name=doc["model"]["name"],
        checkpoint=doc["files"]["model"],
        quick_gelu=doc["model"]["quick_gelu"],
        image_norm=doc["model"].get("image_norm", "clip"),
        label=label,
    )
    out = str(Path(result["output_dir"]) / "eval")
    return base.model_copy(update={"model": model, "output_dir": out, "cache_dir": None})

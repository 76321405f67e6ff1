"""Flow ``evaluate-georsclip``: zero-shot, retrieval and SeLo evaluation of one model, table as artifact.

Flat, typed parameters: each overrides one field of the evaluation config (``--param checkpoint=...``).
Paths given as parameters are relative to the working directory; paths in the config file to its folder.
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, get_run_logger
from pydantic import Field

from rs5m.config.evaluate import load_eval_config
from rs5m.config.loader import overlay
from rs5m.ml.evaluation.run import dataset_jobs
from rs5m.ml.models import check_model
from tasks.evaluate import evaluate_dataset, prepare_eval_data, publish_eval_table, write_eval_report

Name = Annotated[str, Field(min_length=1, max_length=4096)]  # a name or a path


@flow(name="evaluate-georsclip")
def evaluate_georsclip(
    config: Name = "deployments/evaluate-sample.yaml",
    model: Name | None = None,
    pretrained: Name | None = None,
    checkpoint: Name | None = None,
    quick_gelu: bool | None = None,
    image_norm: Name | None = None,
    label: Name | None = None,
    device: Name | None = None,
    batch_size: Annotated[int, Field(ge=1, le=8192)] | None = None,
    output_dir: Name | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate every configured dataset, write the report, publish the table; return table and files.

    Args:
        config: EvalConfig YAML; its relative paths resolve against its own folder
        model: open_clip model name, e.g. ViT-B-32
        pretrained: open_clip pretrained tag
        checkpoint: GeoRSCLIP / open_clip state_dict file
        quick_gelu: build the model with QuickGELU (none: detected from the architecture)
        image_norm: image normalisation preset (clip, rs5m, ...)
        label: the model's row name in the results table
        device: torch device: cpu, cuda, cuda:1
        batch_size: images per batch
        output_dir: where results.{csv,json,md} go
        overrides: any other EvalConfig key (``workers``, ``use_cache``, ``model_precision``); the fields
            above win
    """
    over = {"model_name": model, "model_pretrained": pretrained, "model_checkpoint": checkpoint}
    over |= {"model_quick_gelu": quick_gelu, "model_image_norm": image_norm, "model_label": label}
    over |= {"device": device, "batch_size": batch_size, "output_dir": output_dir}
    over = overlay(overrides, over)
    cfg = load_eval_config(config, **over)
    check_model(cfg.model.name, cfg.model.checkpoint)  # before any dataset loads
    prepare_eval_data(cfg)
    get_run_logger().info("evaluating %s on %d datasets", cfg.model.row_label(), len(dataset_jobs(cfg)))
    results = [evaluate_dataset(cfg, kind, name) for kind, name in dataset_jobs(cfg)]
    report = write_eval_report(cfg, results)
    publish_eval_table(report, cfg)
    return {"table": report["table"], "files": report["files"]}

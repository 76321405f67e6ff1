"""Flow ``train-georsclip``: fine-tune on one dataset version, publish curves, then evaluate the model.

Runs on the ``gpu`` work pool. The dataset version comes in as a parameter (a build's hand-off passes
``dataset_version`` and ``data_root``): with no explicit ``shards`` the flow reads that version's
open_clip-layout shards. Each run goes to ``<data_root>/train-runs/<version>-<hash>`` (dataset version,
data fingerprint and training config: ``rs5m.ml.training.identity``), so a run started again on the same
data and settings resumes from its latest checkpoint, and one on other data starts fresh in its own
folder. The evaluation data is checked (or generated, ``demo_data``) before training starts; at the end
``evaluate-georsclip`` scores the exported model and publishes its table next to the published rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger
from pydantic import Field

from flows.evaluate import evaluate_georsclip
from rs5m.config.evaluate import load_eval_config
from rs5m.config.loader import overlay
from tasks.evaluate import prepare_eval_data
from tasks.train import evaluation_config, publish_training, train_config, train_model

Name = Annotated[str, Field(min_length=1, max_length=4096)]  # a name or a path


@flow(name="train-georsclip")
def train_georsclip(
    config: Name = "deployments/train-sample.yaml",
    dataset_version: Name | None = None,
    data_root: Name = "data",
    shards: Name | None = None,
    preset: Literal["paper", "ret2"] | None = None,
    engine: Literal["ours", "open_clip_train"] | None = None,
    model: Name | None = None,
    pretrained: Name | None = None,
    checkpoint: Name | None = None,
    batch_size: Annotated[int, Field(ge=1, le=65536)] | None = None,
    epochs: Annotated[int, Field(ge=1, le=10_000)] | None = None,
    max_steps: Annotated[int, Field(ge=1)] | None = None,
    device: Name | None = None,
    output_dir: Name | None = None,
    resume: Name | None = None,
    nproc: Annotated[int, Field(ge=1, le=64)] | None = None,
    evaluate: bool = True,
    eval_config: Name = "deployments/evaluate-sample.yaml",
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train (or resume the same run), publish the loss curve and metrics, evaluate the final model.

    Args:
        config: TrainConfig YAML; its relative paths resolve against its own folder
        dataset_version: dataset version to train on (its open_clip shards under data_root)
        data_root: data root holding versions/ and train-runs/ (relative: to the working directory)
        shards: explicit shards instead of the version's (folder, glob or brace pattern)
        preset: recipe defaults (paper, ret2) under the config's keys
        engine: ours or open_clip_train
        model: open_clip model name, e.g. ViT-B-32
        pretrained: open_clip pretrained tag, e.g. openai
        checkpoint: initial state_dict file
        batch_size: per-GPU micro-batch
        epochs: passes over the data
        max_steps: stop after this many optimizer steps
        device: auto, cpu, cuda
        output_dir: run folder; default <data_root>/train-runs/<version>-<hash>
        resume: auto (the run folder's latest checkpoint) | never | a checkpoint path
        nproc: GPUs to use (default: all visible)
        evaluate: run evaluate-georsclip on the final model
        eval_config: EvalConfig YAML for that evaluation (checked before training starts)
        overrides: any other TrainConfig key, dotted (``{"optim.lr": 1e-5}``); the fields above win
    """
    logger = get_run_logger()
    over = {"preset": preset, "engine": engine, "model.name": model, "model.pretrained": pretrained}
    over |= {"model.checkpoint": checkpoint, "data.shards": shards, "batch_size": batch_size}
    over |= {"epochs": epochs, "max_steps": max_steps, "device": device, "resume": resume}
    over = overlay(overrides, over)
    cfg = train_config(config, dataset_version, data_root, over, output_dir)
    if evaluate:  # before training: a missing evaluation set must not fail a finished training run
        prepare_eval_data(load_eval_config(eval_config))
    version = cfg.data.version or "unversioned"
    label = f"{cfg.model.name} on {version} (ours)"
    logger.info("training %s on %s, run folder %s", label, cfg.data.shards or "csv sources", cfg.output_dir)
    result = train_model(cfg, nproc)
    publish_training(result, label)
    logger.info("final model %s", Path(result["files"]["model"]))
    out: dict[str, Any] = {"train": result, "evaluation": None}
    if evaluate:
        out["evaluation"] = evaluate_georsclip(**evaluation_config(eval_config, result), label=label)
    return out

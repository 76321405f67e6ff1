"""Flow ``finetune-captioner``: BLIP-2 LoRA on RSITMD/RSICD-style captions, then vanilla vs tuned scores.

Writes ``<out_dir>/adapter`` (peft) + ``finetune.json`` (config, data fingerprint, adapter sha256) and
publishes the METEOR/BLEU-4/CIDEr table as an artifact. Feed the adapter to the RS3 flow as
``captioner.adapter``. The sample job (``deployments/finetune-captioner-sample.yaml``) trains the tiny
random BLIP-2 on generated data: it exercises the code path only. Flat, typed parameters; paths given
as parameters are relative to the working directory, paths in the config file to its folder.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger
from pydantic import Field

from rs5m.config.captioner import load_finetune_config
from rs5m.config.loader import overlay
from tasks.finetune_captioner import evaluate_task, finetune_task, publish_task

Name = Annotated[str, Field(min_length=1, max_length=4096)]  # a name or a path


@flow(name="finetune-captioner")
def finetune_captioner_flow(
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] = "sample",
    config: Name = "deployments/finetune-captioner-sample.yaml",
    out_dir: Name | None = None,
    device: Name | None = None,
    max_steps: Annotated[int, Field(ge=1)] | None = None,
    precision: Literal["bf16", "fp32"] | None = None,
    evaluate: bool = True,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fine-tune, evaluate, publish; return ``{"finetune": record, "evaluation": report or None}``.

    Args:
        name: names the artifacts of this run
        config: FinetuneConfig YAML; its relative paths resolve against its own folder
        out_dir: output folder (adapter/, checkpoints/, eval/)
        device: torch device (auto, cpu, cuda)
        max_steps: stop after this many optimiser steps
        precision: bf16 (GPU) or fp32
        evaluate: score vanilla vs tuned on the test split
        overrides: any other FinetuneConfig key, dotted (``{"lr": 1e-4}``); the fields above win
    """
    from rs5m.ml.captioner_ft.train import resolve_data

    over = {"out_dir": out_dir, "device": device, "max_steps": max_steps, "precision": precision}
    over = overlay(overrides, over)
    cfg = resolve_data(load_finetune_config(config, **over))
    logger = get_run_logger()
    record = finetune_task(cfg)
    report = None
    if evaluate and cfg.eval.enabled and cfg.test is not None:
        report = evaluate_task(cfg, record["adapter"]["path"])
    publish_task(name, record, report)
    logger.info("adapter %s (sha256 %s)", record["adapter"]["path"], record["adapter"]["sha256"])
    return {"finetune": record, "evaluation": report}


if __name__ == "__main__":
    finetune_captioner_flow()

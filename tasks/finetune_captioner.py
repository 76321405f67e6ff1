"""Prefect tasks of ``finetune-captioner``: the LoRA fine-tune, the evaluation, the table artifact."""

from __future__ import annotations

import re
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from rs5m.config.captioner import FinetuneConfig


@task(name="finetune-blip2-lora", task_run_name="finetune-{cfg.model}")
def finetune_task(cfg: FinetuneConfig) -> dict[str, Any]:
    """Run (or resume) the fine-tune; return the ``finetune.json`` record."""
    from rs5m.ml.captioner_ft.train import finetune

    logger = get_run_logger()
    return finetune(cfg, logger.info)


@task(name="evaluate-captioners")
def evaluate_task(cfg: FinetuneConfig, adapter: str) -> dict[str, Any]:
    """Vanilla vs tuned METEOR/BLEU-4/CIDEr on ``cfg.test`` (written to ``<out_dir>/eval``)."""
    from pathlib import Path

    from rs5m.ml.captioner_ft.evaluate import evaluate_captioners

    return evaluate_captioners(
        cfg.model, cfg.revision, adapter, cfg.test, cfg.eval, cfg.device, Path(cfg.out_dir) / "eval"
    )


@task(name="publish-captioner-eval")
def publish_task(name: str, record: dict[str, Any], report: dict[str, Any] | None) -> None:
    """Publish the vanilla-vs-tuned table (or, without evaluation, the run summary) as artifacts."""
    key = re.sub(r"[^a-z0-9-]+", "-", f"captioner-ft-{name}".lower())
    adapter = record["adapter"]
    desc = (
        f"BLIP-2 LoRA {name}: {record['steps']} steps, adapter {adapter['path']} sha256 {adapter['sha256']}"
    )
    if report is not None:
        rows = [{k: v for k, v in r.items() if k != "meteor_skipped"} for r in report["table"]]
        if report.get("meteor_skipped"):
            desc += f"; METEOR skipped: {report['meteor_skipped']}"
        create_table_artifact(key=key, table=rows, description=desc)
    else:
        create_markdown_artifact(key=key, markdown=desc, description="no evaluation")

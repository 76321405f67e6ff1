"""Prefect tasks of the ``evaluate-georsclip`` flow: one per dataset, then the report and its artifacts."""

from __future__ import annotations

import re
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from rs5m.config.evaluate import EvalConfig
from rs5m.ml.evaluation import run as evaluation
from rs5m.ml.evaluation.report import format_rows


@task(name="evaluate-dataset", task_run_name="evaluate-{task_kind}-{name}")
def evaluate_dataset(cfg: EvalConfig, task_kind: str, name: str) -> dict[str, Any]:
    """Score one configured dataset with the (process-cached) model."""
    return evaluation.evaluate_dataset(cfg, task_kind, name)


@task(name="write-eval-report")
def write_eval_report(cfg: EvalConfig, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Write results.{csv,json,md}; return the table and file paths."""
    return evaluation.finish_evaluation(cfg, results)


@task(name="publish-eval-table")
def publish_eval_table(report: dict[str, Any]) -> None:
    """Publish the "All tasks" table (ours beside the published rows) as table and Markdown artifacts."""
    key = re.sub(r"[^a-z0-9-]+", "-", f"eval-{report['label']}".lower()).strip("-")[:100]
    desc = f"GeoRSCLIP evaluation of {report['label']} (RS5M README 'All tasks' layout)"
    create_table_artifact(key=key, table=format_rows(report["table"]), description=desc)
    files = "\n".join(f"- {kind}: `{path}`" for kind, path in report["files"].items())
    create_markdown_artifact(key=f"{key}-md", markdown=f"{report['markdown']}\n{files}\n", description=desc)

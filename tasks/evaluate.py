"""Prefect tasks of the ``evaluate-georsclip`` flow: one per dataset, then the report and its artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from rs5m.config.evaluate import EvalConfig
from rs5m.ml.evaluation import run as evaluation
from rs5m.ml.evaluation.report import format_rows
from rs5m.ml.models import TINY_MODEL_NAME
from tasks._common import artifact_key


def prepare_eval_data(cfg: EvalConfig) -> None:
    """Generate the demo datasets when ``cfg.demo_data`` asks for them and they are missing; then
    ``FileNotFoundError`` (one line) naming every dataset path that still does not exist.

    Call it before hours of work (training) that end in this evaluation."""
    if cfg.demo_data and cfg.missing_paths():
        from rs5m.ml.evaluation.fixtures import write_demo_eval_data

        get_run_logger().info("writing the demo evaluation datasets into %s", cfg.demo_data)
        write_demo_eval_data(Path(cfg.demo_data))
    missing = cfg.missing_paths()
    if missing:
        raise FileNotFoundError(
            f"evaluation data missing: {', '.join(missing)}; write it (`rs5m evaluate --demo DIR` makes the "
            "demo sets) or set demo_data in the evaluation config"
        )


def caveat(cfg: EvalConfig) -> str | None:
    """The line that goes above a table where a tiny or random-init model sits beside published numbers."""
    tiny = cfg.model.name == TINY_MODEL_NAME
    if not cfg.compare_published or not (tiny or (cfg.model.pretrained is None and not cfg.model.checkpoint)):
        return None
    what = "the tiny test model" if tiny else "a random-init model"
    return (
        f"Caveat: {cfg.model.row_label()} is {what}, run to check the code path; its numbers are not "
        "comparable with the published GeoRSCLIP rows beside it."
    )


@task(name="evaluate-dataset", task_run_name="evaluate-{task_kind}-{name}")
def evaluate_dataset(cfg: EvalConfig, task_kind: str, name: str) -> dict[str, Any]:
    """Score one configured dataset with the (process-cached) model."""
    return evaluation.evaluate_dataset(cfg, task_kind, name)


@task(name="write-eval-report")
def write_eval_report(cfg: EvalConfig, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Write results.{csv,json,md}; return the table and file paths."""
    return evaluation.finish_evaluation(cfg, results)


@task(name="publish-eval-table")
def publish_eval_table(report: dict[str, Any], cfg: EvalConfig) -> None:
    """Publish the "All tasks" table (ours beside the published rows) as table and Markdown artifacts, with
    a caveat line when a tiny or random-init model sits beside the published numbers."""
    key = artifact_key(f"eval-{report['label']}")
    note = caveat(cfg)
    desc = f"GeoRSCLIP evaluation of {report['label']} (RS5M README 'All tasks' layout)"
    create_table_artifact(key=key, table=format_rows(report["table"]), description=f"{desc}. {note or ''}")
    files = "\n".join(f"- {kind}: `{path}`" for kind, path in report["files"].items())
    head = f"> **{note}**\n\n" if note else ""
    create_markdown_artifact(
        key=f"{key}-md", markdown=f"{head}{report['markdown']}\n{files}\n", description=desc
    )

"""Prefect tasks of the ``fetch-pub11-metadata`` flow: fetch one source, publish what was fetched."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from rs5m.config.fetch import FetchConfig
from rs5m.fetch.run import fetch_metadata


@task(name="fetch-source", task_run_name="fetch-{source}")
def fetch_source(cfg: FetchConfig, source: str) -> dict[str, Any]:
    """Fetch every file of ``source`` (``cfg.workers`` at once); return the report's summary."""
    summary = fetch_metadata(cfg.model_copy(update={"sources": [source]})).summary()
    get_run_logger().info(
        "%s: %d file(s), %d byte(s) fetched, %d error(s), %d to place by hand",
        source,
        len(summary["rows"]),
        summary["bytes_fetched"],
        len(summary["errors"]),
        len(summary["manual"]),
    )
    return summary


@task(name="publish-fetch-report")
def publish_fetch_report(summaries: list[dict[str, Any]]) -> None:
    """One table artifact (a row per file) and a Markdown artifact with failures and manual steps."""
    rows = [{k: ("" if v is None else v) for k, v in r.items()} for s in summaries for r in s["rows"]]
    create_table_artifact(key="fetch-pub11-metadata", table=rows, description="PUB11 metadata files")
    lines = [f"- failed: {e}" for s in summaries for e in s["errors"]]
    lines += [
        f"- by hand: {m['file']} ({m['instructions']}: {m['page']})" for s in summaries for m in s["manual"]
    ]
    create_markdown_artifact(
        key="fetch-pub11-metadata-notes", markdown="\n".join(lines) or "all files present"
    )

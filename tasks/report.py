"""Prefect tasks that publish build results as UI artifacts."""

from __future__ import annotations

import base64
import json

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from rs5m.config import BuildConfig
from rs5m.core import version as build
from rs5m.lineage import store as lineage
from rs5m.lineage.compare import DEFAULT_FLAG_POINTS, compare_funnel, flagged
from rs5m.lineage.report import funnel_chart
from rs5m.pipeline import forecast
from rs5m.pipeline.timing import actual_rates
from tasks._common import artifact_key

# Short headers: the UI gives each column its header's width, and the long names ran the table past the page.
SHORT_HEADERS = {
    "Name": "Source",
    "Amount": "Read",
    "After Keyword Filtering": "Keyword",
    "Download Image": "Downloaded",
    "Invalid Image (Removed)": "Invalid",
    "Duplicate Image (Removed)": "Duplicate",
    "Outlier images (Removed)": "Outlier",
    "Remain": "Remain",
}
FUNNEL_NOTE = (
    "Read: pairs in the metadata; Keyword: RS keyword hits; Downloaded: images fetched; Invalid, Duplicate, "
    "Outlier: removed at that stage; Remain: kept (the RS5M PUB11 table's columns)"
)


def short_rows(rows: list[dict]) -> list[dict]:
    """The funnel rows with the short headers of ``SHORT_HEADERS`` (other columns keep their names)."""
    return [{SHORT_HEADERS.get(k, k): v for k, v in r.items()} for r in rows]


@task(name="publish-funnel")
def publish_funnel(cfg: BuildConfig) -> list[dict]:
    """Publish the PUB11 funnel and removal reasons of the version as table artifacts; return the funnel."""
    with lineage.connect(build.lineage_db(cfg), read_only=True) as con:
        rows = lineage.funnel_rows(con, cfg.version)
        reasons = lineage.reason_rows(con, cfg.version)
    create_table_artifact(
        key=artifact_key(f"funnel-{cfg.version}"),
        table=short_rows(rows),
        description=f"PUB11 funnel of version {cfg.version}. {FUNNEL_NOTE}",
    )
    create_table_artifact(
        key=artifact_key(f"reasons-{cfg.version}"),
        table=reasons,
        description=f"Removal reasons of version {cfg.version}",
    )
    chart = funnel_chart(
        rows, cfg.version_dir() / "reports" / "funnel.png", f"PUB11 funnel, version {cfg.version}"
    )
    png = base64.b64encode(chart.read_bytes()).decode()
    create_markdown_artifact(
        key=artifact_key(f"version-{cfg.version}"),
        markdown=f"**Version** `{cfg.version}`\n\n**Path** `{cfg.version_dir().resolve()}`\n\n"
        f"**Config hash** `{cfg.config_hash()}`\n\n![PUB11 funnel](data:image/png;base64,{png})\n\n"
        f"Chart file: `{chart.resolve()}`",
        description=f"Version {cfg.version}: where it is, its config hash and the funnel chart",
    )
    return rows


@task(name="publish-forecast")
def publish_forecast(cfg: BuildConfig) -> list[dict]:
    """Publish the build's forecast beside the stage timings it measured, as a table artifact."""
    layout = cfg.layout()
    if not layout.forecast_file.is_file():
        return []
    fc = json.loads(layout.forecast_file.read_text(encoding="utf-8"))
    rows = forecast.stage_rows(fc, actual_rates(layout))
    create_table_artifact(
        key=artifact_key(f"forecast-{cfg.version}"), table=rows,
        description=f"Forecast (rates.yaml) vs actual per stage, version {cfg.version}: actual hours sum the "
        "partitions (one worker's time); forecast hours divide by the planned workers",
    )  # fmt: skip


@task(name="publish-funnel-comparison")
def publish_funnel_comparison(cfg: BuildConfig, flag_points: float = DEFAULT_FLAG_POINTS) -> list[dict]:
    """Publish the version's stage rates beside RS5M's as a table artifact; return the comparison rows."""
    with lineage.connect(build.lineage_db(cfg), read_only=True) as con:
        rows = compare_funnel(lineage.funnel_rows(con, cfg.version), flag_points)
    create_table_artifact(
        key=artifact_key(f"funnel-vs-rs5m-{cfg.version}"),
        table=rows,
        description=f"PUB11 stage rates of version {cfg.version} beside RS5M's published ones: "
        f"{len(flagged(rows))} differ by more than {flag_points:g} points (Flag !)",
    )
    return rows

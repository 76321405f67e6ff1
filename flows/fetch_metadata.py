"""Flow ``fetch-pub11-metadata``: download the PUB11 metadata into the folders deployments/full.yaml reads."""

from __future__ import annotations

from typing import Any

from prefect import flow

from rs5m.config.fetch import FetchConfig
from rs5m.fetch.catalogue import load_catalogue
from tasks.fetch import fetch_source, publish_fetch_report


@flow(name="fetch-pub11-metadata")
def fetch_pub11_metadata(params: FetchConfig | None = None) -> dict[str, Any]:
    """Fetch each selected source in turn, publish the report; fail the run when a file is missing."""
    cfg = params or FetchConfig(dest="pub11-metadata")
    summaries = [fetch_source(cfg, s) for s in cfg.selected(load_catalogue(cfg.catalogue).sources)]
    publish_fetch_report(summaries)
    problems = [e for s in summaries for e in s["errors"]]
    problems += [
        f"place {m['file']} by hand ({m['page']})"
        for s in summaries
        for m in s["manual"]
        if not m["optional"]
    ]
    if problems:
        raise RuntimeError(f"{len(problems)} problem(s): " + " | ".join(problems))
    return {
        "files": sum(len(s["rows"]) for s in summaries),
        "bytes_fetched": sum(s["bytes_fetched"] for s in summaries),
    }

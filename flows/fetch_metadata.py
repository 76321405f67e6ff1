"""Flow ``fetch-pub11-metadata``: download the PUB11 metadata into the folders deployments/full.yaml reads.

Flat parameters, one per ``FetchConfig`` field (``--param dry_run=true``); ``FetchConfig`` checks them.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from rs5m.config.fetch import FetchConfig
from rs5m.fetch.catalogue import load_catalogue
from tasks.fetch import fetch_source, publish_fetch_report


@flow(name="fetch-pub11-metadata")
def fetch_pub11_metadata(
    dest: str = "pub11-metadata",
    sources: list[str] | None = None,
    workers: int = 4,
    dry_run: bool = False,
    verify: bool = False,
    catalogue: str | None = None,
    retries: int = 5,
    retry_wait_s: float = 2.0,
    timeout_s: float = 60.0,
    chunk_bytes: int = 1 << 20,
) -> dict[str, Any]:
    """Fetch each selected source in turn, publish the report; fail the run when a file is missing.

    Args:
        dest: folder that receives <source folder>/<file> and fetch-manifest.json (relative: to the
            working directory, a deployment's being the repository root)
        sources: PUB11 source names; none or empty = all 11
        workers: files fetched at once (1-64)
        dry_run: list what would be fetched, with sizes; fetch nothing
        verify: re-hash files already present instead of trusting their size and modification time
        catalogue: catalogue YAML; default: the packaged one
        retries: resumed attempts after a dropped transfer
        retry_wait_s: pause before attempt n: n x this
        timeout_s: socket timeout of one HTTP request
        chunk_bytes: read size of HTTP bodies
    """
    cfg = FetchConfig(
        dest=dest, sources=sources or [], workers=workers, dry_run=dry_run, verify=verify,
        catalogue=catalogue, retries=retries, retry_wait_s=retry_wait_s, timeout_s=timeout_s,
        chunk_bytes=chunk_bytes,
    )  # fmt: skip
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

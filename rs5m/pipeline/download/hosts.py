"""Per-host outcome counts of a download partition: the link-rot statistics the lineage keeps.

``host_outcomes(status, top_n)`` counts the rows of a ``STATUS_SCHEMA`` table per URL host (lower-case,
from the URL; ``(none)`` when it has none) and per outcome: ``success`` or the failure reason. The
``top_n`` hosts with the most failures (ties: most rows, then name) keep their own counts; every other
host's counts are summed under ``(other)``, so a partition's record is bounded whatever its host mix.
The counts over all hosts (``(other)`` included) always add up to the table's rows. Stored in the
download stats file as ``extra["hosts"]`` and loaded into the lineage's ``download_hosts`` table.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

import pyarrow as pa

SUCCESS = "success"
OTHER_HOSTS = "(other)"
NO_HOST = "(none)"


def url_host(url: str | None) -> str:
    """The lower-case host of ``url``, or ``(none)`` for a URL without one (or unparsable)."""
    try:
        return (urlsplit(url or "").hostname or NO_HOST).lower()
    except ValueError:
        return NO_HOST


def host_outcomes(status: pa.Table, top_n: int) -> dict[str, dict[str, int]]:
    """``{host: {outcome: n}}`` for the ``top_n`` most-failing hosts plus ``(other)`` (see module doc)."""
    per_host: dict[str, Counter[str]] = {}
    columns = status.select(["url", "reason"]).to_pydict()
    for url, reason in zip(columns["url"], columns["reason"], strict=True):
        per_host.setdefault(url_host(url), Counter())[reason or SUCCESS] += 1

    def rank(host: str) -> tuple[int, int, str]:
        counts = per_host[host]
        total = sum(counts.values())
        return (-(total - counts[SUCCESS]), -total, host)

    ranked = sorted(per_host, key=rank)
    out = {host: dict(sorted(per_host[host].items())) for host in ranked[:top_n]}
    other: Counter[str] = Counter()
    for host in ranked[top_n:]:
        other.update(per_host[host])
    if other:
        out[OTHER_HOSTS] = dict(sorted(other.items()))
    return out

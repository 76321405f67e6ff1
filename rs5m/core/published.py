"""RS5M's published PUB11 table (``rs5m_pub11.yaml``, reference §6), the one copy every module reads: the
funnel comparison (``rs5m.lineage.compare``) and the forecast's shares (``rs5m.pipeline.forecast``)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def rs5m_table() -> dict[str, Any]:
    """``{"sources": {source: counts}, "total": counts, ...}`` as published (counts of image-text pairs)."""
    text = resources.files("rs5m.core").joinpath("rs5m_pub11.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def funnel_shares(source: str | None = None) -> dict[str, float]:
    """RS5M's stage shares of one source (``None``: the total): hit = after keyword / amount; download =
    downloaded / hits; invalid and duplicate = of downloaded; outlier = of the post-dedup pool."""
    data = rs5m_table()
    e = data["sources"].get(source) if source else None
    e = e or data["total"]
    pool = e["downloaded"] - e["invalid"] - e["duplicate"]
    return {
        "hit": e["after_keyword"] / e["amount"],
        "download": e["downloaded"] / e["after_keyword"],
        "invalid": e["invalid"] / e["downloaded"],
        "duplicate": e["duplicate"] / e["downloaded"],
        "outlier": e["outlier"] / pool if pool else 0.0,
    }

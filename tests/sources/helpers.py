"""Shared helpers for the source adapter tests: run an adapter over a file and collect everything."""

from __future__ import annotations

import json
from typing import Any

from rs5m.sources import get_adapter
from rs5m.sources.base import RAW_SCHEMA, RawReject


def read_all(name: str, path: Any, **options: Any) -> tuple[list[dict[str, Any]], list[RawReject]]:
    """All rows (extras parsed from JSON) and rejects an adapter yields for one file, schema checked."""
    adapter = get_adapter(name)
    opts = adapter.options_model(**options)
    rows: list[dict[str, Any]] = []
    rejects: list[RawReject] = []
    for batch in adapter.read(str(path), opts):
        assert batch.table.schema.equals(RAW_SCHEMA)
        batch.table.validate(full=True)
        for row in batch.table.to_pylist():
            row["extras"] = json.loads(row["extras"]) if row["extras"] is not None else None
            rows.append(row)
        rejects.extend(batch.rejects)
    return rows, rejects


def brief(rejects: list[RawReject]) -> list[tuple[str, str, str | None]]:
    """``(locator, reason, key)`` of each reject, for exact comparisons."""
    return [(r.locator, r.reason, r.key) for r in rejects]

"""Shared helpers for the source adapter tests: run an adapter over a file (or its pieces) and collect
everything."""

from __future__ import annotations

import json
from typing import Any

from rs5m.sources import get_adapter
from rs5m.sources.base import RAW_SCHEMA, RawReject


def read_all(
    name: str, path: Any, piece: str | None = None, **options: Any
) -> tuple[list[dict[str, Any]], list[RawReject]]:
    """All rows (extras parsed from JSON) and rejects an adapter yields for one file (or one piece of
    it), schema checked."""
    adapter = get_adapter(name)
    opts = adapter.options_model(**options)
    rows: list[dict[str, Any]] = []
    rejects: list[RawReject] = []
    for batch in adapter.read(str(path), opts, piece):
        assert batch.table.schema.equals(RAW_SCHEMA)
        batch.table.validate(full=True)
        for row in batch.table.to_pylist():
            row["extras"] = json.loads(row["extras"]) if row["extras"] is not None else None
            rows.append(row)
        rejects.extend(batch.rejects)
    return rows, rejects


def read_pieces(
    name: str, path: Any, rows_per_piece: int, **options: Any
) -> tuple[list[str], list[dict[str, Any]], list[RawReject]]:
    """The piece specs of a file and the rows and rejects of reading each piece in turn."""
    adapter = get_adapter(name)
    pieces = adapter.pieces(str(path), adapter.options_model(**options), rows_per_piece)
    rows: list[dict[str, Any]] = []
    rejects: list[RawReject] = []
    for piece in pieces:
        r, j = read_all(name, path, piece, **options)
        rows += r
        rejects += j
    return pieces, rows, rejects


def detect(name: str, path: Any, **options: Any) -> tuple[str, int | None]:
    """``(layout name, rows)`` the adapter detects for a file."""
    adapter = get_adapter(name)
    info = adapter.detect(str(path), adapter.options_model(**options))
    return info.name, info.rows


def brief(rejects: list[RawReject]) -> list[tuple[str, str, str | None]]:
    """``(locator, reason, key)`` of each reject, for exact comparisons."""
    return [(r.locator, r.reason, r.key) for r in rejects]

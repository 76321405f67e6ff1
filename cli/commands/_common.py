"""Helpers shared by CLI commands: Prefect environment defaults and table printing."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from rs5m.core.layout import DataRoot

PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_LEVEL": "INFO",
    "DASK_LOGGING__DISTRIBUTED": "warning",
    "NO_ALBUMENTATIONS_UPDATE": "1",
}


def prefect_env(root: str | Path) -> None:
    """Set Prefect defaults for a local run (a user's own settings win); a home under the data root."""
    for key, val in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, val)
    Path(root).mkdir(parents=True, exist_ok=True)  # Prefect cannot create its home under a missing root
    os.environ.setdefault("PREFECT_HOME", str(DataRoot.of(Path(root).resolve()).prefect_home))


def format_table(rows: list[dict[str, Any]], fmt: str = "table") -> str:
    """Render rows as an aligned text table, CSV or JSON. ``None`` shows as an empty cell."""
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        writer.writeheader()
        writer.writerows([{k: ("" if v is None else v) for k, v in r.items()} for r in rows])
        return buf.getvalue().rstrip("\n")
    cells = [[_cell(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]

    def line(vals: list[str]) -> str:
        pairs = enumerate(zip(vals, widths, strict=True))
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in pairs)

    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)

"""Helpers shared by CLI commands: Prefect environment defaults, data-root checks and table printing."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from cli import logs
from cli.errors import CliError
from rs5m.core.layout import DataRoot

PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_LEVEL": "INFO",
    "DASK_LOGGING__DISTRIBUTED": "warning",
    "NO_ALBUMENTATIONS_UPDATE": "1",
}


def prefect_env(root: str | Path) -> None:
    """Set Prefect defaults for a local run (a user's own settings win); a home and the log under the root.

    Call before Prefect is imported: its console logging is set up then (``cli.logs``).
    """
    for key, val in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, val)
    data_root = DataRoot.of(writable_root(root).resolve())
    os.environ.setdefault("PREFECT_HOME", str(data_root.prefect_home))
    logs.configure(data_root.log_file)


def writable_root(root: str | Path) -> Path:
    """The data root ``root``, created if missing; ``CliError`` when it is a file or not writable."""
    path = Path(root)
    if path.exists() and not path.is_dir():
        raise CliError(f"data root {path} is not a folder (a file is in the way): pass a folder as --root")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file somewhere above it
        raise CliError(
            f"data root {path}: a file is in the way of its folders: pass a folder as --root"
        ) from None
    except PermissionError as exc:
        raise CliError(f"cannot create the data root {path}: permission denied ({exc.filename})") from None
    except OSError as exc:
        said = exc.strerror or str(exc)
        raise CliError(f"cannot create the data root {path}: {said[:1].lower()}{said[1:]}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CliError(
            f"data root {path} is not writable by you (read-only or no permission): pass a writable --root"
        )
    return path


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

"""Build reports: the PUB11 funnel as a chart (PNG) for the UI and the docs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: workers and CI have no display
import matplotlib.pyplot as plt  # noqa: E402


def _series(row: dict[str, Any]) -> dict[str, int | None]:
    """Pairs left after each stage (the table lists removals for the later stages)."""
    downloaded = row.get("Download Image")
    valid = (
        None
        if downloaded is None or row.get("Invalid Image (Removed)") is None
        else (downloaded - row["Invalid Image (Removed)"])
    )
    unique = (
        None
        if valid is None or row.get("Duplicate Image (Removed)") is None
        else (valid - row["Duplicate Image (Removed)"])
    )
    return {
        "read": row.get("Amount"),
        "keyword hit": row.get("After Keyword Filtering"),
        "downloaded": downloaded,
        "valid": valid,
        "unique": unique,
        "remain": row.get("Remain"),
    }


def funnel_chart(rows: list[dict[str, Any]], path: str | Path, title: str = "PUB11 funnel") -> Path:
    """Draw per-source counts after each stage (log scale) as grouped horizontal bars; return the path.

    Stages that have not run (``None`` everywhere) are left out.
    """
    sources = [r for r in rows if r["Name"] != "Total"]
    series = [_series(r) for r in sources]
    columns = [c for c in series[0] if any(s[c] is not None for s in series)] if series else []
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(sources) * max(1, len(columns)) / 2 + 1.5))
    height = 0.8 / max(1, len(columns))
    for i, col in enumerate(columns):
        ys = [j + i * height for j in range(len(sources))]
        ax.barh(ys, [max(s[col] or 0, 0.9) for s in series], height=height, label=col)
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(sources))], [r["Name"] for r in sources])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("pairs (log scale)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out

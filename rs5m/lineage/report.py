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
    """Draw pairs left after each stage per source (one line each, log scale, the total in black) on one
    screen (990 x 550 px); return the path. Stages that have not run (``None`` everywhere) are left out."""
    sources = [r for r in rows if r["Name"] != "Total"]
    total = [r for r in rows if r["Name"] == "Total"]
    series = [_series(r) for r in [*sources, *total]]
    columns = [c for c in series[0] if any(s[c] is not None for s in series)] if series else []
    fig, ax = plt.subplots(figsize=(9, 5))
    colours = plt.get_cmap("tab20").colors
    xs = list(range(len(columns)))
    for i, (row, ser) in enumerate(zip([*sources, *total], series, strict=True)):
        ys = [max(ser[c], 0.9) if ser[c] is not None else float("nan") for c in columns]
        total_line = row["Name"] == "Total"
        colour, width = ("black", 2.5) if total_line else (colours[i % 20], 1.2)
        ax.plot(xs, ys, marker="o", markersize=3, label=row["Name"], color=colour, linewidth=width)
    ax.set_xticks(xs, columns)
    ax.set_yscale("log")
    ax.set_ylabel("pairs (log scale)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small", frameon=False)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out

"""Geo statistics over meta-captioned samples: counts by country, UTM zone and month; a world map PNG.

Inputs are parquet files with the geo columns ``stage.GEO_COLUMNS`` (``lat, lon, country, utm_zone,
month``; nulls where unknown) plus ``source``. Counting runs in an in-memory DuckDB (never the lineage
database). The map is an equirectangular scatter (hexbin above ``hexbin_above`` points); for orientation
without any map data download, the gazetteer's cities are drawn underneath as faint dots.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from rs5m.core.io import atomic_path
from rs5m.rs3.geo import MONTHS, gazetteer

_COUNT_SQL = {
    "country": "SELECT country AS key, count(*) AS n FROM t WHERE country IS NOT NULL GROUP BY 1 "
    "ORDER BY 2 DESC, 1",
    "utm_zone": "SELECT utm_zone AS key, count(*) AS n FROM t WHERE utm_zone IS NOT NULL GROUP BY 1 "
    "ORDER BY 2 DESC, 1",
    "month": "SELECT month AS key, count(*) AS n FROM t WHERE month IS NOT NULL GROUP BY 1 ORDER BY 1",
    "source": "SELECT source AS key, count(*) AS n, count(lat) AS located FROM t GROUP BY 1 ORDER BY 1",
}


def _relation(con: duckdb.DuckDBPyConnection, files: Sequence[str | Path]) -> None:
    paths = [str(f) for f in files]
    if paths:
        rel = con.read_parquet(paths, union_by_name=True)
        rel.project(
            "source, lat::DOUBLE AS lat, lon::DOUBLE AS lon, country::VARCHAR AS country, "
            "utm_zone::VARCHAR AS utm_zone, month::INT AS month"
        ).create_view("t", replace=True)
    else:
        con.execute(
            "CREATE OR REPLACE TEMP VIEW t AS SELECT NULL::VARCHAR AS source, NULL::DOUBLE AS lat, "
            "NULL::DOUBLE AS lon, NULL::VARCHAR AS country, NULL::VARCHAR AS utm_zone, NULL::INT AS month "
            "WHERE false"
        )


def geo_counts(files: Sequence[str | Path]) -> dict[str, list[dict[str, Any]]]:
    """``{country, utm_zone, month, source}`` -> rows ``{key, n}`` (months as names), largest first."""
    with duckdb.connect() as con:
        _relation(con, files)
        out = {}
        for name, sql in _COUNT_SQL.items():
            res = con.execute(sql)
            cols = [d[0] for d in res.description]
            out[name] = [dict(zip(cols, row, strict=True)) for row in res.fetchall()]
    for row in out["month"]:
        row["key"] = MONTHS[int(row["key"]) - 1]
    return out


def geo_points(files: Sequence[str | Path]) -> list[tuple[float, float, str]]:
    """``(lat, lon, source)`` of every located sample."""
    with duckdb.connect() as con:
        _relation(con, files)
        return [
            tuple(r) for r in con.execute("SELECT lat, lon, source FROM t WHERE lat IS NOT NULL").fetchall()
        ]


def world_map(
    points: Sequence[tuple[float, float, str]], path: str | Path, title: str, hexbin_above: int = 5000
) -> Path:
    """Write a world map PNG of ``points`` to ``path`` (atomically) and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records, _ = gazetteer()
    fig, ax = plt.subplots(figsize=(12, 6.2), dpi=110)
    big = [r for r in records if r["population"] >= 50000]
    ax.scatter([r["longitude"] for r in big], [r["latitude"] for r in big], s=0.3, c="#c8c8c8", lw=0)
    if len(points) > hexbin_above:
        hb = ax.hexbin([p[1] for p in points], [p[0] for p in points], gridsize=120, bins="log", mincnt=1)
        fig.colorbar(hb, ax=ax, shrink=0.7, label="samples (log)")
    else:
        for source in sorted({p[2] for p in points}):
            mine = [p for p in points if p[2] == source]
            ax.scatter([p[1] for p in mine], [p[0] for p in mine], s=9, label=f"{source} ({len(mine)})")
        if points:
            ax.legend(loc="lower left", fontsize=8)
    ax.set(xlim=(-180, 180), ylim=(-90, 90), xlabel="longitude", ylabel="latitude", title=title)
    ax.set_aspect("equal")
    ax.grid(True, lw=0.3, alpha=0.5)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
    return path


def counts_markdown(counts: dict[str, list[dict[str, Any]]], top: int = 15) -> str:
    """Markdown tables of the counts (top ``top`` rows each) for an artifact."""
    parts = []
    for name, rows in counts.items():
        cols = list(rows[0]) if rows else ["key", "n"]
        lines = [f"### by {name}", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows[:top]]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)

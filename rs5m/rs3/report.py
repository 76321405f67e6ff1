"""RS3 reports: the RS3 funnel and geometa coverage from DuckDB, geo statistics and the world map.

``geo_report(version_dir)`` writes under ``<version_dir>/rs3/geo/``: ``geo_counts.json`` (counts by
country, UTM zone, month and source over RS3 captions and PUB11 meta-captions), ``places.json`` (PUB11
place-name counts summed from the places stats files), ``geo_report.md`` and ``world_map.png``.
The funnel functions read the lineage tables that ``rs5m.lineage.store.load_version`` fills from the stats
files (subset ``rs3``: stages read and caption; subset ``geometa``: meta_caption and places).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import duckdb

from rs5m.core.io import atomic_path, write_json
from rs5m.core.layout import VersionLayout
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats
from rs5m.rs3 import geostats
from rs5m.rs3.readers import DISPLAY, SOURCES

RS3_FUNNEL_COLUMNS = ["Name", "Files", "Read", "Read failed", "Captioned", "Caption failed"]


def _totals(con: duckdb.DuckDBPyConnection, version: str, subset: str) -> dict[tuple[str, str], tuple]:
    res = con.execute(
        "SELECT source, stage, sum(n_in), sum(n_out) FROM stage_stats WHERE version = ? AND subset = ? "
        "GROUP BY ALL",
        [version, subset],
    ).fetchall()
    return {(s, st): (int(a), int(b)) for s, st, a, b in res}


def rs3_funnel_rows(con: duckdb.DuckDBPyConnection, version: str) -> list[dict[str, Any]]:
    """One row per RS3 source (FMoW, BigEarthNet, MillionAID order) and a Total row; stages not run: None."""
    tot = _totals(con, version, "rs3")
    out = []
    for src in sorted({s for s, _ in tot}, key=lambda s: SOURCES.index(s) if s in SOURCES else 99):
        read, cap = tot.get((src, StageName.RS3_READ)), tot.get((src, StageName.RS3_CAPTION))
        values = [
            read[0] if read else None,
            read[1] if read else None,
            read[0] - read[1] if read else None,
            cap[1] if cap else None,
            cap[0] - cap[1] if cap else None,
        ]
        out.append(dict(zip(RS3_FUNNEL_COLUMNS, [DISPLAY.get(src, src), *values], strict=True)))
    total: dict[str, Any] = {"Name": "Total"}
    for col in RS3_FUNNEL_COLUMNS[1:]:
        vals = [r[col] for r in out if r[col] is not None]
        total[col] = sum(vals) if vals else None
    return [*out, total] if out else []


def geometa_rows(con: duckdb.DuckDBPyConnection, version: str) -> list[dict[str, Any]]:
    """PUB11 coverage per source: rows scanned, meta-captions, captions naming a place."""
    tot = _totals(con, version, "geometa")
    rows = []
    for src in sorted({s for s, _ in tot}):
        meta, places = tot.get((src, StageName.META_CAPTION)), tot.get((src, StageName.PLACES))
        scanned = (places or meta or (None, None))[0]
        rows.append(
            {
                "source": src,
                "rows": scanned,
                "meta_captions": meta[1] if meta else None,
                "with_place": places[1] if places else None,
            }
        )
    return rows


def _places_summary(version_dir: Path) -> dict[str, Any]:
    by_name: Counter = Counter()
    by_kind: Counter = Counter()
    by_country: Counter = Counter()
    n_in = n_out = 0
    for p in VersionLayout.of(version_dir).stats_files(StageName.PLACES):
        s = PartitionStats.read(p)
        n_in, n_out = n_in + s.n_in, n_out + s.n_out
        by_name.update(s.extra.get("top_places", {}))
        by_kind.update(s.extra.get("by_kind", {}))
        by_country.update(s.extra.get("by_country", {}))
    return {
        "captions": n_in,
        "with_place": n_out,
        "by_kind": dict(by_kind),
        "by_country": dict(by_country.most_common()),
        "top_places": dict(by_name.most_common(50)),
        "note": "top_places sums each partition's top 100 names",
    }


def geo_report(version_dir: str | Path, title: str | None = None) -> dict[str, str]:
    """Write the geo statistics, place counts, a markdown summary and the world map; return their paths."""
    vdir = Path(version_dir)
    layout = VersionLayout.of(vdir)
    out = layout.geo_dir
    files = [
        p for stage in (StageName.RS3_CAPTION, StageName.META_CAPTION) for _, _, p in layout.outputs(stage)
    ]
    counts = geostats.geo_counts(files)
    points = geostats.geo_points(files)
    places = _places_summary(vdir)
    paths = {
        "counts": out / "geo_counts.json",
        "places": out / "places.json",
        "map": out / "world_map.png",
        "markdown": out / "geo_report.md",
    }
    write_json(paths["counts"], counts)
    write_json(paths["places"], places)
    geostats.world_map(points, paths["map"], title or f"RS3 + PUB11 geo-located samples ({len(points)})")
    top = ", ".join(f"{k} ({v})" for k, v in list(places["top_places"].items())[:15])
    text = (
        f"**Located samples** {len(points)}\n\n"
        + geostats.counts_markdown(counts)
        + f"\n\n### PUB11 place names\n{places['with_place']} of {places['captions']} captions name a place; "
        + f"by kind {places['by_kind']}; top: {top}\n"
    )
    with atomic_path(paths["markdown"]) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return {k: str(v) for k, v in paths.items()}

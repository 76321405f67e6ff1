"""Rating reports: means and standard deviations per subset and source (the layout of RS5M App. B11),
inter-rater agreement, filter-audit shares, and a CSV export of every rating.

Contract:
- Means and sample standard deviations (ddof=1, ``None`` for a single rating) are over rating rows
  (one per rater and pair); broken marks are counted, not scored.
- A pair's verdict for audits uses each scale's mean over its raters: *good* when every scale's mean
  is >= ``good_min``, *bad* when any is <= ``bad_max``; a pair only ever marked broken is bad.
  ``removed_good_share`` is the share of rated removed pairs that are good, ``kept_bad_share`` the
  share of rated kept pairs that are bad, per audited stage and source.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from rs5m.core.schema import DISPLAY_NAMES, SOURCE_ORDER
from rs5m.rating.agreement import agreement_rows
from rs5m.rating.rubric import SCALE_NAMES, SCALE_TITLES
from rs5m.rating.sampling import AUDIT_STAGES

RATING_COLUMNS = ["uid", "subset", "source", "rater", *SCALE_NAMES, "broken", "comment", "rated_at"]
ALL = "(all)"


def load_ratings(con: duckdb.DuckDBPyConnection, version: str) -> list[dict[str, Any]]:
    """Every current rating of ``version`` with its pair's subset and source; ``ValueError`` if none."""
    sql = (
        "WITH items AS (SELECT DISTINCT uid, subset, source FROM rating_sample_items WHERE version = $v) "
        f"SELECT {', '.join('r.' + c if c not in ('subset', 'source') else c for c in RATING_COLUMNS)} "
        "FROM ratings r LEFT JOIN items i USING (uid) WHERE r.version = $v ORDER BY r.uid, r.rater"
    )
    try:
        rows = con.execute(sql, {"v": version}).fetchall()
    except duckdb.CatalogException:
        rows = []
    if not rows:
        raise ValueError(
            f"no ratings for version {version!r} yet; rate some with `rs5m rate --version {version}`"
        )
    return [dict(zip(RATING_COLUMNS, r, strict=True)) for r in rows]


def load_audit(con: duckdb.DuckDBPyConnection, version: str) -> list[tuple[str, str, str, str]]:
    """``(uid, source, stage, decision)`` of every pair drawn for a filter audit of ``version``."""
    return con.execute(
        "SELECT DISTINCT uid, source, stage, decision FROM rating_sample_items "
        "WHERE version = ? AND list_contains(?, stage) ORDER BY stage, uid",
        [version, list(AUDIT_STAGES)],
    ).fetchall()


def _stats(vals: list[int]) -> tuple[float | None, float | None]:
    if not vals:
        return None, None
    arr = np.asarray(vals, dtype=float)
    return float(arr.mean()), (float(arr.std(ddof=1)) if len(arr) > 1 else None)


def _summary_row(subset: str, source: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "subset": subset,
        "source": source,
        "pairs": len({r["uid"] for r in rows}),
        "ratings": sum(1 for r in rows if r["broken"] is None),
        "broken": sum(1 for r in rows if r["broken"] is not None),
    }
    for scale in SCALE_NAMES:
        mean, std = _stats([r[scale] for r in rows if r[scale] is not None])
        out[f"{scale}_mean"], out[f"{scale}_std"] = mean, std
    return out


def _source_order(source: str) -> tuple[int, str]:
    return (SOURCE_ORDER.index(source) if source in SOURCE_ORDER else len(SOURCE_ORDER), source)


def summary_rows(ratings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows per (subset, source), then per subset (source ``(all)``), then ``All`` overall."""
    out = []
    subsets = sorted({r["subset"] or "unknown" for r in ratings})
    for subset in subsets:
        in_subset = [r for r in ratings if (r["subset"] or "unknown") == subset]
        for source in sorted({r["source"] or "unknown" for r in in_subset}, key=_source_order):
            out.append(
                _summary_row(subset, source, [r for r in in_subset if (r["source"] or "unknown") == source])
            )
        out.append(_summary_row(subset, ALL, in_subset))
    if len(subsets) > 1:
        out.append(_summary_row("All", ALL, ratings))
    return out


def _verdicts(ratings: list[dict[str, Any]], good_min: float, bad_max: float) -> dict[str, str]:
    by_uid: dict[str, list[dict[str, Any]]] = {}
    for r in ratings:
        by_uid.setdefault(r["uid"], []).append(r)
    out = {}
    for uid, rows in by_uid.items():
        scored = [r for r in rows if r["broken"] is None]
        if not scored:
            out[uid] = "bad"
            continue
        means = [float(np.mean([r[s] for r in scored])) for s in SCALE_NAMES]
        out[uid] = "good" if min(means) >= good_min else "bad" if min(means) <= bad_max else "fair"
    return out


def audit_rows(
    ratings: list[dict[str, Any]],
    audit: list[tuple[str, str, str, str]],
    good_min: float = 4,
    bad_max: float = 2,
) -> list[dict[str, Any]]:
    """Removed-but-good and kept-but-bad shares per audited stage and source (plus ``(all)``)."""
    verdict = _verdicts(ratings, good_min, bad_max)
    out = []
    for stage in sorted({a[2] for a in audit}, key=AUDIT_STAGES.index):
        rows = [a for a in audit if a[2] == stage and a[0] in verdict]
        for source in [*sorted({a[1] for a in rows}, key=_source_order), ALL]:
            sel = [a for a in rows if source == ALL or a[1] == source]
            removed = [verdict[a[0]] for a in sel if a[3] == "removed"]
            kept = [verdict[a[0]] for a in sel if a[3] == "kept"]
            out.append(
                {
                    "stage": stage,
                    "source": source,
                    "removed_rated": len(removed),
                    "removed_good": removed.count("good"),
                    "removed_good_share": removed.count("good") / len(removed) if removed else None,
                    "kept_rated": len(kept),
                    "kept_bad": kept.count("bad"),
                    "kept_bad_share": kept.count("bad") / len(kept) if kept else None,
                }
            )
    return out


def build_report(
    con: duckdb.DuckDBPyConnection, version: str, good_min: float = 4, bad_max: float = 2
) -> dict[str, Any]:
    """Every table of the report for ``version`` as JSON-ready data (see module contract)."""
    ratings = load_ratings(con, version)
    return {
        "version": version,
        "raters": sorted({r["rater"] for r in ratings}),
        "pairs": len({r["uid"] for r in ratings}),
        "ratings": len(ratings),
        "thresholds": {"good_min": good_min, "bad_max": bad_max},
        "summary": summary_rows(ratings),
        "agreement": agreement_rows(ratings, SCALE_NAMES),
        "audit": audit_rows(ratings, load_audit(con, version), good_min, bad_max),
    }


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return ""
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def display_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Summary rows as the B11 table: ``mean ± std`` per scale, display names for PUB11 sources."""
    out = []
    for r in rows:
        name = DISPLAY_NAMES.get(r["source"], r["source"]) if r["subset"] == "pub11" else r["source"]
        row = {"Subset": r["subset"], "Source": name, "Pairs": r["pairs"], "Ratings": r["ratings"]}
        row["Broken"] = r["broken"]
        for s in SCALE_NAMES:
            row[SCALE_TITLES[s]] = _pm(r[f"{s}_mean"], r[f"{s}_std"])
        out.append(row)
    return out


def display_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with floats rounded to three places (agreement and audit tables)."""
    return [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]


def write_csv(con: duckdb.DuckDBPyConnection, version: str, path: Path) -> int:
    """Write every current rating of ``version`` (with caption and audit decisions) as CSV; return rows."""
    ratings = load_ratings(con, version)
    extra = dict(
        con.execute(
            "SELECT uid, string_agg(DISTINCT stage || ':' || decision, ';' ORDER BY stage || ':' || decision)"
            " FROM rating_sample_items WHERE version = ? AND list_contains(?, stage) GROUP BY uid",
            [version, list(AUDIT_STAGES)],
        ).fetchall()
    )
    captions = dict(
        con.execute(
            "SELECT DISTINCT uid, caption FROM rating_sample_items WHERE version = ?", [version]
        ).fetchall()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(
            f, fieldnames=["version", *RATING_COLUMNS, "audit", "caption"], lineterminator="\n"
        )
        writer.writeheader()
        for r in ratings:
            writer.writerow(
                {"version": version, **r, "audit": extra.get(r["uid"], ""), "caption": captions.get(r["uid"])}
            )
    return len(ratings)

"""The outlier decision (reference §5): pooled-quantile thresholds over every PUB11 score, in DuckDB.

Contract of ``decide_outliers(version_dir, sources, cfg)``:
- Pool: the rows of every ``outlier_score/<source>/*.parquet`` of the listed sources that the dedup stage
  kept. Every dedup-kept uid must be scored (``ValueError`` otherwise: score every partition first).
- Thresholds: for a keep fraction f of a score over its N non-null values, the threshold is the
  ceil(f*N)-th largest value, so about f*N rows are kept (more when values tie at the threshold);
  f = 1 keeps every scored row. s_vlm and c_rs get their thresholds independently over the pool.
- Keep iff s_vlm >= m and c_rs >= n. Reasons otherwise: ``outlier_vlm`` (only s_vlm fails),
  ``outlier_rs`` (only c_rs fails), ``outlier_both``, ``outlier_unscored`` (no s_vlm: image not
  decodable). With no c_rs at all (scored without a detector) the RS criterion is skipped.
- Writes ``outlier/decisions.parquet`` (uid, source, s_vlm, c_rs, keep_outlier, reason), the keep
  grid ``outlier/grid.csv`` (rows: s_vlm top fraction; columns: c_rs top fraction; cells: kept
  rows, RS5M Fig. 13), then per-source stats ``outlier/_stats/<source>/global.json`` (stage
  ``outlier``, n_in = dedup-kept rows, n_out = kept). Only these files change when the fractions
  do: the score files are read, never rewritten. Same fractions and unchanged scores: not redone.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import duckdb

from rs5m.config import BuildConfig, OutlierConfig
from rs5m.core.io import atomic_path
from rs5m.core.layout import GLOBAL, VersionLayout
from rs5m.core.schema import Reason, StageName
from rs5m.core.stats import PartitionStats, read_done
from rs5m.pipeline.dedup.stage import decisions_path as dedup_decisions

OUTLIER_VLM = Reason.OUTLIER_VLM.value
OUTLIER_RS = Reason.OUTLIER_RS.value
OUTLIER_BOTH = Reason.OUTLIER_BOTH.value
OUTLIER_UNSCORED = Reason.OUTLIER_UNSCORED.value
OUTLIER_REASONS = (OUTLIER_VLM, OUTLIER_RS, OUTLIER_BOTH, OUTLIER_UNSCORED)


def decisions_path(version_dir: Path) -> Path:
    """Per-uid outlier decisions of a version."""
    return VersionLayout.of(version_dir).barrier_file(StageName.OUTLIER, "decisions.parquet")


def grid_path(version_dir: Path) -> Path:
    """The keep-count grid CSV of a version."""
    return VersionLayout.of(version_dir).barrier_file(StageName.OUTLIER, "grid.csv")


def stats_path(version_dir: Path, source: str) -> Path:
    """The decision's per-source stats file (the funnel's Outlier and Remain columns)."""
    return VersionLayout.of(version_dir).stats(StageName.OUTLIER, source)


def score_files(version_dir: Path, sources: list[str]) -> list[str]:
    """Every score parquet of the listed sources, sorted."""
    outputs = VersionLayout.of(version_dir).outputs(StageName.OUTLIER_SCORE)
    return [str(path) for source, _, path in outputs if source in sources]


_KEPT = "SELECT uid FROM read_parquet($d) WHERE dup_keep AND list_contains($s, source)"


def _connect(version_dir: Path, sources: list[str]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the pooled scores as table ``scores`` (uid, source, s_vlm, c_rs): the scores
    of the dedup-kept rows only (every valid row is scored; the quantiles are over the post-dedup pool)."""
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE scores (uid VARCHAR, source VARCHAR, s_vlm FLOAT, c_rs FLOAT)")
    files = score_files(version_dir, sources)
    if files:
        con.execute(
            "INSERT INTO scores SELECT uid, source, s_vlm, c_rs FROM read_parquet($f) "
            f"WHERE uid IN ({_KEPT})",
            {"f": files, "d": str(dedup_decisions(VersionLayout.of(version_dir))), "s": sources},
        )
    return con


def _check_coverage(con: duckdb.DuckDBPyConnection, version_dir: Path, sources: list[str]) -> None:
    dedup = str(dedup_decisions(VersionLayout.of(version_dir)))
    (missing,) = con.execute(
        f"SELECT count(*) FROM ({_KEPT}) WHERE uid NOT IN (SELECT uid FROM scores)",
        {"s": sources, "d": dedup},
    ).fetchone()
    if missing:
        raise ValueError(
            f"outlier scores do not cover the dedup-kept rows: {missing} kept uids unscored "
            "(score every valid partition first)"
        )
    bad = con.execute("SELECT count(*) FILTER (WHERE c_rs IS NULL AND s_vlm IS NOT NULL), "
                      "count(c_rs) FROM scores").fetchone()  # fmt: skip
    if bad[0] and bad[1]:
        raise ValueError(f"{bad[0]} rows have no c_rs while others do: rescore them with the same detector")


def _keep_count(n: int, fraction: float) -> int:
    return max(1, math.ceil(round(fraction * n, 6))) if n else 0


def thresholds(
    con: duckdb.DuckDBPyConnection, column: str, fractions: list[float]
) -> dict[float, float | None]:
    """fraction -> the ceil(f*N)-th largest non-null value of ``column`` (None when it has no values)."""
    n = con.execute(f"SELECT count({column}) FROM scores").fetchone()[0]
    ranks = {f: _keep_count(n, f) for f in fractions}
    found = dict(
        con.execute(
            f"SELECT rn, v FROM (SELECT {column} v, row_number() OVER (ORDER BY {column} DESC) rn "
            f"FROM scores WHERE {column} IS NOT NULL) WHERE rn IN (SELECT unnest($r))",
            {"r": sorted(set(ranks.values()))},
        ).fetchall()
    )
    return {f: found.get(k) for f, k in ranks.items()}


def _grid(con: duckdb.DuckDBPyConnection, cfg: OutlierConfig) -> list[dict[str, Any]]:
    m, n = thresholds(con, "s_vlm", cfg.grid), thresholds(con, "c_rs", cfg.grid)
    params: dict[str, Any] = {"skip": all(v is None for v in n.values())}
    cells = []
    for i, fv in enumerate(cfg.grid):
        for j, fr in enumerate(cfg.grid):
            params[f"m{i}"], params[f"n{j}"] = m[fv], n[fr]
            cells.append(f"count(*) FILTER (WHERE s_vlm >= $m{i} AND ($skip OR c_rs >= $n{j}))")
    counts = con.execute(f"SELECT {', '.join(cells)} FROM scores", params).fetchone()
    rows, k = [], len(cfg.grid)
    for i, fv in enumerate(cfg.grid):
        row: dict[str, Any] = {"vlm_top_pct": _pct(fv)}
        row.update({f"rs_top_{_pct(fr)}": int(counts[i * k + j]) for j, fr in enumerate(cfg.grid)})
        rows.append(row)
    return rows


def _pct(f: float) -> str:
    return f"{f * 100:g}"


def keep_grid(version_dir: Path, sources: list[str], cfg: OutlierConfig) -> list[dict[str, Any]]:
    """Kept rows for every (s_vlm, c_rs) top-fraction pair of ``cfg.grid`` (RS5M Fig. 13), row-wise."""
    with _connect(version_dir, sources) as con:
        return _grid(con, cfg)


def _write_grid(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _fingerprint(version_dir: Path, sources: list[str], cfg: OutlierConfig) -> str:
    files = [
        (f, Path(f).stat().st_size, Path(f).stat().st_mtime_ns) for f in score_files(version_dir, sources)
    ]
    payload = json.dumps([cfg.model_dump(), sorted(sources), files])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _write_decisions(con: duckdb.DuckDBPyConnection, path: Path, m: float | None, n: float | None) -> None:
    rs_ok = "(c_rs >= $n OR $skip)"
    sql = f"""COPY (SELECT uid, source, s_vlm, c_rs, coalesce(s_vlm >= $m AND {rs_ok}, false) AS keep_outlier,
        CASE WHEN s_vlm IS NULL THEN '{OUTLIER_UNSCORED}'
             WHEN s_vlm < $m AND NOT {rs_ok} THEN '{OUTLIER_BOTH}'
             WHEN s_vlm < $m THEN '{OUTLIER_VLM}'
             WHEN NOT {rs_ok} THEN '{OUTLIER_RS}' END AS reason
        FROM scores ORDER BY uid) TO $out (FORMAT parquet, COMPRESSION zstd)"""
    with atomic_path(path) as tmp:
        con.execute(sql, {"m": m, "n": n, "skip": n is None, "out": str(tmp)})


def decide_outliers(version_dir: Path, sources: list[str], cfg: OutlierConfig) -> list[PartitionStats]:
    """Pooled-quantile keep decision over every score of ``sources`` (see the module contract)."""
    vdir = Path(version_dir)
    fp = _fingerprint(vdir, sources, cfg)
    done = [read_done(stats_path(vdir, s)) for s in sources]
    if (
        all(d is not None and d.extra.get("fingerprint") == fp for d in done)
        and decisions_path(vdir).exists()
    ):
        return done
    with _connect(vdir, sources) as con:
        _check_coverage(con, vdir, sources)
        m = thresholds(con, "s_vlm", [cfg.keep_top_vlm])[cfg.keep_top_vlm]
        n = thresholds(con, "c_rs", [cfg.keep_top_rs])[cfg.keep_top_rs]
        _write_decisions(con, decisions_path(vdir), m, n)
        _write_grid(grid_path(vdir), _grid(con, cfg))
        counts = con.execute(
            "SELECT source, reason, count(*) FROM read_parquet($f) GROUP BY ALL",
            {"f": str(decisions_path(vdir))},
        ).fetchall()
    extra = {"fingerprint": fp, "config": cfg.model_dump(), "s_vlm_threshold": m, "c_rs_threshold": n}
    out = []
    for source in sources:
        stats = PartitionStats(stage=StageName.OUTLIER.value, source=source, partition=GLOBAL, extra=extra)
        for src, reason, k in counts:
            if src == source:
                stats.n_in += k
                if reason is None:
                    stats.n_out += k
                else:
                    stats.remove(reason, k)
        stats.write(stats_path(vdir, source))
        out.append(stats)
    return out


def run(layout: VersionLayout, sources: list[str], cfg: BuildConfig) -> list[PartitionStats]:
    """The outlier decision over every source of the build (``rs5m.pipeline.registry``)."""
    return decide_outliers(layout.dir, sources, cfg.outlier)

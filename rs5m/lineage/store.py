"""Lineage store in DuckDB: per-partition stage counts, removal reasons, versions, and the funnel view.

One writer: DuckDB lets one process at a time open the file read-write, and a writer also keeps
read-only openers out (readers only keep writers out). ``load_version`` and ``set_version_status`` (and
nothing else) open it read-write, briefly; ``connect`` waits with backoff while another process holds
it (``LINEAGE_WAIT_S``, or ``$RS5M_LINEAGE_WAIT_S``) and then raises ``LineageBusy`` naming the file.
Tables: ``versions``, ``stage_stats`` (one row per version/stage/partition), ``stage_reasons`` (removed
rows per reason), ``keyword_hits``, ``download_hosts`` (download outcomes per URL host and reason, NULL
reason = downloaded; each download partition's top hosts, the rest under host ``(other)``).
Views: ``funnel`` (the RS5M PUB11 table, per version) and ``reasons``. Per-sample decisions stay in
parquet and are read by ``rs5m.lineage.why``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from rs5m.core.layout import VersionLayout
from rs5m.core.schema import DISPLAY_NAMES, SOURCE_ORDER, StageName
from rs5m.core.stats import PartitionStats

FUNNEL_COLUMNS = [
    "Name",
    "Amount",
    "After Keyword Filtering",
    "Download Image",
    "Invalid Image (Removed)",
    "Duplicate Image (Removed)",
    "Outlier images (Removed)",
    "Remain",
]

_DDL = """
CREATE TABLE IF NOT EXISTS versions (version VARCHAR PRIMARY KEY, created_at TIMESTAMP, updated_at TIMESTAMP,
    config_hash VARCHAR, status VARCHAR, root VARCHAR, code_version VARCHAR);
CREATE TABLE IF NOT EXISTS stage_stats (version VARCHAR, subset VARCHAR, source VARCHAR, stage VARCHAR,
    partition VARCHAR, n_in BIGINT, n_out BIGINT);
CREATE TABLE IF NOT EXISTS stage_reasons (version VARCHAR, subset VARCHAR, source VARCHAR, stage VARCHAR,
    partition VARCHAR, reason VARCHAR, n BIGINT);
CREATE TABLE IF NOT EXISTS keyword_hits (version VARCHAR, source VARCHAR, keyword VARCHAR, n BIGINT);
CREATE TABLE IF NOT EXISTS download_hosts (version VARCHAR, source VARCHAR, host VARCHAR, reason VARCHAR,
    n BIGINT);
CREATE OR REPLACE VIEW stage_totals AS
    SELECT version, subset, source, stage, sum(n_in) AS n_in, sum(n_out) AS n_out
    FROM stage_stats GROUP BY ALL;
CREATE OR REPLACE VIEW reasons AS
    SELECT version, subset, source, stage, reason, sum(n) AS n FROM stage_reasons GROUP BY ALL;
CREATE OR REPLACE VIEW funnel AS
    SELECT version, source, {funnel_columns}
    FROM stage_totals WHERE subset = 'pub11' GROUP BY version, source;
"""


# The PUB11 table (RS5M README / paper Table VII): column, then the stage and measure it is read from.
FUNNEL_SPEC: list[tuple[str, StageName, str]] = [
    ("amount", StageName.INGEST, "max(n_in)"),
    ("after_keyword", StageName.KEYWORD, "max(n_out)"),
    ("downloaded", StageName.DOWNLOAD, "max(n_out)"),
    ("invalid_removed", StageName.VALIDITY, "max(n_in - n_out)"),
    ("duplicate_removed", StageName.DEDUP, "max(n_in - n_out)"),
    ("outlier_removed", StageName.OUTLIER, "max(n_in - n_out)"),
    ("remain", StageName.OUTLIER, "max(n_out)"),
]
_FUNNEL_SQL = ",\n        ".join(
    f"{agg} FILTER (WHERE stage = '{st.value}') AS {col}" for col, st, agg in FUNNEL_SPEC
)

LINEAGE_WAIT_S = 120.0  # default wait for another process's hold on the file; $RS5M_LINEAGE_WAIT_S wins

log = logging.getLogger(__name__)


class LineageBusy(ValueError):
    """Another process held the lineage database for the whole wait. A ``ValueError``: one CLI line."""


class DatabaseUnreadable(ValueError):
    """DuckDB cannot open or read a database file (damaged, not DuckDB, no permission). One CLI line."""


_DAMAGED = ("not a valid duckdb database", "corrupt", "checksum", "could not read enough bytes", "serializ")


def unreadable(db_path: str | Path, exc: BaseException) -> DatabaseUnreadable:
    """A ``DatabaseUnreadable`` naming ``db_path``, DuckDB's own words and what to do."""
    said = " ".join(str(exc).split())
    if any(mark in said.lower() for mark in _DAMAGED):
        return DatabaseUnreadable(
            f"cannot read the database {db_path} ({said}): the file is damaged or not a DuckDB database; "
            "restore it from a backup, or move it aside and rebuild the versions you need (a build "
            "reloads its version's counts from the stats files)"
        )
    return DatabaseUnreadable(f"cannot open the database {db_path}: {said}")


@contextmanager
def named_errors(db_path: str | Path) -> Iterator[None]:
    """Re-raise a DuckDB error of the block (a query of a damaged file) as ``DatabaseUnreadable``."""
    try:
        yield
    except duckdb.Error as exc:
        raise unreadable(db_path, exc) from exc


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    # DuckDB 2.0: IOException 'Could not set lock on file "...": Conflicting lock is held in ... (PID n)'
    return isinstance(exc, duckdb.IOException) and "could not set lock" in str(exc).lower()


def _wait_s(wait_s: float | None) -> float:
    if wait_s is not None:
        return wait_s
    env = os.environ.get("RS5M_LINEAGE_WAIT_S", "")
    try:
        return float(env) if env else LINEAGE_WAIT_S
    except ValueError:
        raise ValueError(f"RS5M_LINEAGE_WAIT_S={env!r} is not a number of seconds") from None


def open_waiting(db_path: Path, read_only: bool, wait_s: float | None) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file, waiting with backoff while another process holds it (see ``connect``)."""
    limit, start, delay, told = _wait_s(wait_s), time.monotonic(), 0.05, False
    while True:
        try:
            return duckdb.connect(str(db_path), read_only=read_only)
        except duckdb.Error as exc:
            if not _is_lock_conflict(exc):
                raise unreadable(db_path, exc) from exc
            waited = time.monotonic() - start
            if waited >= limit:
                mode = "read" if read_only else "write"
                raise LineageBusy(
                    f"cannot open the lineage database {db_path} to {mode}: another process held it for "
                    f"{limit:g} s ({exc}); retry when it is done, or raise RS5M_LINEAGE_WAIT_S"
                ) from exc
            if not told:
                log.warning(
                    "lineage database %s is held by another process; waiting up to %g s", db_path, limit
                )
                told = True
            # short steps: a writer such as the rating store lets go between requests, so gaps are short
            time.sleep(min(delay, limit - waited))
            delay = min(delay * 1.5, 0.5)


def connect(
    db_path: str | Path, read_only: bool = False, wait_s: float | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the lineage database (creating tables and views when writable).

    While another process holds the file in a conflicting mode (a writer keeps everyone out, a reader
    keeps writers out), retry with backoff for up to ``wait_s`` seconds (default ``$RS5M_LINEAGE_WAIT_S``
    or ``LINEAGE_WAIT_S``), then raise ``LineageBusy`` naming the file. ``FileNotFoundError`` when
    reading a database that does not exist, ``DatabaseUnreadable`` when DuckDB cannot open it (a damaged
    file may fail in queries later: wrap them in ``named_errors``). Writers should close the connection as
    soon as they are done.
    """
    db_path = Path(db_path)
    if read_only:
        if not db_path.exists():
            raise FileNotFoundError(f"no lineage database at {db_path}; run `rs5m build` first")
        return open_waiting(db_path, True, wait_s)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    con = open_waiting(db_path, False, wait_s)
    try:
        with named_errors(db_path):
            con.execute(_DDL.format(funnel_columns=_FUNNEL_SQL))
    except BaseException:
        con.close()
        raise
    return con


def set_version_status(db_path: str | Path, version: str, status: str, config_hash: str, root: str) -> None:
    """Insert or update a version record."""
    from rs5m import __version__

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with connect(db_path) as con:
        con.execute(
            """INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (version) DO UPDATE SET updated_at = excluded.updated_at,
               status = excluded.status, config_hash = excluded.config_hash""",
            [version, now, now, config_hash, status, root, __version__],
        )


def read_stats_files(version_dir: Path) -> list[PartitionStats]:
    """Every stats file of a version folder; raise ``ValueError`` on a corrupt one."""
    return [PartitionStats.read(p) for p in VersionLayout.of(version_dir).stats_files()]


def load_version(db_path: str | Path, version: str, version_dir: Path) -> int:
    """Replace the version's counts in DuckDB with those of its stats files; return the number loaded."""
    stats = read_stats_files(version_dir)
    rows = [(version, s.subset, s.source, s.stage, s.partition, s.n_in, s.n_out) for s in stats]
    reasons = [
        (version, s.subset, s.source, s.stage, s.partition, r, n) for s in stats for r, n in s.removed.items()
    ]
    hits: dict[tuple[str, str], int] = {}
    for s in stats:
        for kw, n in s.extra.get("keyword_hits", {}).items():
            hits[(s.source, kw)] = hits.get((s.source, kw), 0) + int(n)
    hosts = _host_counts(stats)
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        for table in ("stage_stats", "stage_reasons", "keyword_hits", "download_hosts"):
            con.execute(f"DELETE FROM {table} WHERE version = ?", [version])
        if rows:
            con.executemany("INSERT INTO stage_stats VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        if reasons:
            con.executemany("INSERT INTO stage_reasons VALUES (?, ?, ?, ?, ?, ?, ?)", reasons)
        if hits:
            con.executemany(
                "INSERT INTO keyword_hits VALUES (?, ?, ?, ?)",
                [(version, s, k, n) for (s, k), n in hits.items()],
            )
        if hosts:
            con.executemany(
                "INSERT INTO download_hosts VALUES (?, ?, ?, ?, ?)",
                [(version, s, h, r, n) for (s, h, r), n in hosts.items()],
            )
        con.execute("COMMIT")
    return len(stats)


def _host_counts(stats: list[PartitionStats]) -> dict[tuple[str, str, str | None], int]:
    """(source, host, reason; None: success) -> n, summed over download partitions' ``extra["hosts"]``."""
    out: dict[tuple[str, str, str | None], int] = {}
    for s in stats:
        if s.stage != StageName.DOWNLOAD.value:
            continue
        for host, outcomes in s.extra.get("hosts", {}).items():
            for outcome, n in outcomes.items():
                key = (s.source, host, None if outcome == "success" else outcome)
                out[key] = out.get(key, 0) + int(n)
    return out


def latest_version(con: duckdb.DuckDBPyConnection) -> str:
    """The most recently updated version; ``ValueError`` when there is none."""
    row = con.execute("SELECT version FROM versions ORDER BY updated_at DESC LIMIT 1").fetchone()
    if row is None:
        raise ValueError("the lineage database has no versions yet; run `rs5m build` first")
    return row[0]


def require_version(con: duckdb.DuckDBPyConnection, version: str, where: str = "") -> None:
    """``ValueError`` naming the known versions when ``version`` is not in the database (a table of an
    unknown version would otherwise be empty, which reads as "nothing removed"). ``where``: the root."""
    known = [r[0] for r in con.execute("SELECT version FROM versions ORDER BY version").fetchall()]
    if version not in known:
        under = f" under {where}" if where else ""
        raise ValueError(f"unknown version {version!r}{under} (known: {', '.join(known) or 'none'})")


def latest_complete_version(db_path: str | Path, exclude: str | None = None) -> str:
    """The most recently completed version other than ``exclude``; ``ValueError`` when there is none."""
    with connect(db_path, read_only=True) as con:
        row = con.execute(
            "SELECT version FROM versions WHERE status = 'complete' AND version IS DISTINCT FROM ? "
            "ORDER BY updated_at DESC LIMIT 1",
            [exclude],
        ).fetchone()
    if row is None:
        raise ValueError("no complete version to build incrementally from")
    return row[0]


def funnel_rows(con: duckdb.DuckDBPyConnection, version: str) -> list[dict[str, Any]]:
    """The PUB11 table for one version: one row per source (RS5M order) and a Total row.

    Columns of stages that have not run are ``None`` (shown empty), never zero.
    """
    res = con.execute("SELECT * FROM funnel WHERE version = ?", [version]).fetchall()
    if not res:
        known = con.execute("SELECT count(*) FROM versions WHERE version = ?", [version]).fetchone()[0]
        raise ValueError(f"no counts for version {version!r}" + ("" if known else " (unknown version)"))
    by_source = {r[1]: r[2:] for r in res}
    out = []
    for src in sorted(by_source, key=lambda s: SOURCE_ORDER.index(s) if s in SOURCE_ORDER else 99):
        out.append(dict(zip(FUNNEL_COLUMNS, [DISPLAY_NAMES.get(src, src), *by_source[src]], strict=True)))
    total: dict[str, Any] = {"Name": "Total"}
    for col in FUNNEL_COLUMNS[1:]:
        vals = [r[col] for r in out if r[col] is not None]
        total[col] = sum(vals) if vals else None
    return [*out, total]


def reason_rows(con: duckdb.DuckDBPyConnection, version: str) -> list[dict[str, Any]]:
    """Removed-row counts per source, stage and reason for one version (pipeline stage order)."""
    order = {s.value: i for i, s in enumerate(StageName)}  # the one order of stage names
    res = con.execute(
        "SELECT subset, source, stage, reason, n FROM reasons WHERE version = ? AND n > 0", [version]
    ).fetchall()
    rows = [dict(zip(["subset", "source", "stage", "reason", "n"], r, strict=True)) for r in res]
    subsets = {"pub11": 0, "rs3": 1, "geometa": 2}
    return sorted(
        rows, key=lambda r: (subsets.get(r["subset"], 9), order.get(r["stage"], 99), r["source"], r["reason"])
    )


def keyword_rows(con: duckdb.DuckDBPyConnection, version: str) -> list[dict[str, Any]]:
    """Per-keyword hit counts summed over sources, most frequent first."""
    res = con.execute(
        "SELECT keyword, sum(n) AS n FROM keyword_hits WHERE version = ? "
        "GROUP BY keyword ORDER BY n DESC, keyword",
        [version],
    ).fetchall()
    return [{"keyword": k, "n": int(n)} for k, n in res]


def host_rows(con: duckdb.DuckDBPyConnection, version: str, top: int = 20) -> list[dict[str, Any]]:
    """The ``top`` hosts by failed downloads (all sources), each with its failure reasons, most first;
    then the hosts that no partition ranked among its top hosts, summed, as ``(other)``."""
    res = con.execute(
        """WITH hr AS (SELECT host, reason, sum(n) AS n FROM download_hosts WHERE version = ? GROUP BY ALL)
           SELECT host, sum(n) AS urls, coalesce(sum(n) FILTER (WHERE reason IS NOT NULL), 0) AS failed,
               string_agg(reason || ' ' || n, ', ' ORDER BY n DESC, reason) AS reasons
           FROM hr GROUP BY host
           ORDER BY host = '(other)', failed DESC, urls DESC, host""",
        [version],
    ).fetchall()
    rows = [
        {
            "host": host,
            "urls": int(urls),
            "failed": int(failed),
            "failed %": round(100 * failed / urls, 1) if urls else None,
            "reasons": reasons or "",
        }
        for host, urls, failed, reasons in res
    ]
    named = [r for r in rows if r["host"] != "(other)"]
    return named[:top] + [r for r in rows if r["host"] == "(other)"]


def dumps_rows(rows: list[dict[str, Any]]) -> str:
    """Rows as JSON text (for ``--format json`` and artifacts)."""
    return json.dumps(rows, indent=2, default=str)

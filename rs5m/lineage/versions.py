"""Dataset versions: listing versions and diffing two of them.

Contract:
- Counts come from the lineage database (``stage_totals``), the one place stats files are loaded into;
  status and creation time come from it too when it knows the version, else from the folder
  (``COMPLETE`` marker, ``config.json``). The kept rows of a version are ``rs5m.pipeline.package.keep``'s.
- Every SQL statement is parameterised: file paths and uids are bound, never formatted into the text.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from rs5m.core.layout import DataRoot, VersionLayout
from rs5m.core.schema import SOURCE_ORDER, StageName
from rs5m.lineage import store as lineage
from rs5m.pipeline import registry
from rs5m.pipeline.package.keep import KeepDecision, keep_decision
from rs5m.shards.manifest import read_manifest

STAGE_ORDER = registry.order()


def version_dir(root: str | Path, version: str) -> Path:
    """The folder of ``version``; ``ValueError`` naming the known versions when it does not exist."""
    vdir = DataRoot.of(root).version(version).dir
    if "/" in version or version in ("", ".", "..") or not (vdir / "config.json").is_file():
        known = ", ".join(_folders(root)) or "none"
        raise ValueError(f"unknown version {version!r} under {root} (known: {known})")
    return vdir


def _folders(root: str | Path) -> list[str]:
    data = DataRoot.of(root)
    return [v for v in data.version_names() if data.version(v).config_file.is_file()]


def stage_counts(vdir: Path) -> dict[tuple[str, str, str], tuple[int, int]]:
    """``(subset, source, stage) -> (n_in, n_out)`` of a version, from the lineage database (empty when the
    database does not know the version: it was never loaded)."""
    layout = VersionLayout.of(vdir)
    db = layout.data_root.lineage_db
    if not db.is_file():
        return {}
    with lineage.connect(db, read_only=True) as con:
        res = con.execute(
            "SELECT subset, source, stage, n_in, n_out FROM stage_totals WHERE version = ?", [layout.name]
        ).fetchall()
    return {(a, b, c): (int(i), int(o)) for a, b, c, i, o in res}


def _db_rows(root: str | Path) -> dict[str, dict[str, Any]]:
    db = DataRoot.of(root).lineage_db
    if not db.is_file():
        return {}
    try:
        with lineage.connect(db, read_only=True) as con:
            res = con.execute("SELECT version, created_at, config_hash, status FROM versions").fetchall()
    except duckdb.Error as exc:
        raise ValueError(f"cannot read the lineage database {db}: {exc}") from exc
    return {r[0]: {"created": r[1], "config_hash": r[2], "status": r[3]} for r in res}


def _total(counts: dict[tuple[str, str, str], tuple[int, int]], stage: str, idx: int) -> int | None:
    vals = [v[idx] for (_, _, st), v in counts.items() if st == stage]
    return sum(vals) if vals else None


def _n_shards(vdir: Path) -> int | None:
    """Shards over every layout's manifest; ``None`` without manifests or when one fails its checksum."""
    manifests = sorted(VersionLayout.of(vdir).package_dir().glob("*/manifest.json"))
    try:
        return sum(int(read_manifest(m.parent)["n_shards"]) for m in manifests) if manifests else None
    except ValueError:
        return None


def _folder_row(vdir: Path, db: dict[str, Any] | None) -> dict[str, Any]:
    layout = VersionLayout.of(vdir)
    saved = json.loads(layout.config_file.read_text(encoding="utf-8"))
    if layout.complete_marker.exists():
        status = "complete"
    else:
        status = db["status"] if db else "incomplete"
    mtime = (vdir / "config.json").stat().st_mtime
    # the lineage DB stores naive UTC; a folder-only version is shown on the same clock
    created = db["created"] if db else dt.datetime.fromtimestamp(mtime, dt.UTC).replace(tzinfo=None)
    counts = stage_counts(vdir)
    kept = _total(counts, StageName.OUTLIER.value, 1)
    return {
        "version": vdir.name,
        "status": status,
        "created": created.replace(microsecond=0).isoformat(sep=" ") if created else None,
        "config_hash": saved.get("config_hash") or (db or {}).get("config_hash"),
        "ingested": _total(counts, StageName.INGEST.value, 0),
        "kept": kept if kept is not None else _total(counts, StageName.DEDUP.value, 1),
        "packaged": _total(counts, StageName.PACKAGE.value, 1),
        "shards": _n_shards(vdir),
    }


def list_versions(root: str | Path) -> list[dict[str, Any]]:
    """One row per version (folder or lineage record), oldest first.

    Columns: version, status (complete / running / failed / incomplete; ``missing`` when only the DB
    knows it), created, config_hash, ingested (rows read), kept (final keep decision), packaged
    (samples in the shards), shards (all layouts together). Counts are ``None`` where a stage has not run.
    """
    db = _db_rows(root)
    rows = [_folder_row(DataRoot.of(root).version(v).dir, db.get(v)) for v in _folders(root)]
    for name in sorted(set(db) - {r["version"] for r in rows}):
        rec = db[name]
        created = rec["created"].replace(microsecond=0).isoformat(sep=" ") if rec["created"] else None
        rows.append({"version": name, "status": "missing", "created": created,
                     "config_hash": rec["config_hash"], "ingested": None, "kept": None,
                     "packaged": None, "shards": None})  # fmt: skip
    return sorted(rows, key=lambda r: (r["created"] or "", r["version"]))


def _count_rows(a: Path, b: Path) -> list[dict[str, Any]]:
    """Each stage's ``n_out`` per source in ``a`` and ``b`` (``None`` where it did not run), plus totals."""
    ca, cb = stage_counts(a), stage_counts(b)
    rows = []
    for subset, source, stage in set(ca) | set(cb):
        na = ca[(subset, source, stage)][1] if (subset, source, stage) in ca else None
        nb = cb[(subset, source, stage)][1] if (subset, source, stage) in cb else None
        rows.append({"subset": subset, "stage": stage, "source": source, "a": na, "b": nb,
                     "delta": (nb or 0) - (na or 0)})  # fmt: skip
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        t = totals.setdefault((r["subset"], r["stage"]), {**r, "source": "total", "a": None, "b": None})
        for side in ("a", "b"):
            if r[side] is not None:
                t[side] = (t[side] or 0) + r[side]
        t["delta"] = (t["b"] or 0) - (t["a"] or 0)

    def order(r: dict[str, Any]) -> tuple:
        stage = STAGE_ORDER.index(r["stage"]) if r["stage"] in STAGE_ORDER else len(STAGE_ORDER)
        src = SOURCE_ORDER.index(r["source"]) if r["source"] in SOURCE_ORDER else len(SOURCE_ORDER)
        return (r["subset"], stage, r["stage"], r["source"] == "total", src, r["source"])

    return sorted([*rows, *totals.values()], key=order)


def _drop_reasons(con: duckdb.DuckDBPyConnection, vdir: Path, uids: pa.Table) -> dict[str, str]:
    """Why each uid is not kept in ``vdir``: its dedup reason, its outlier reason (the decision file's
    ``reason`` column, else ``outlier``), or ``before_dedup`` (removed at an earlier stage)."""
    dedup = vdir / StageName.DEDUP.value / "decisions.parquet"
    outlier = vdir / StageName.OUTLIER.value / "decisions.parquet"
    why_outlier, join, params = "'outlier'", "", [str(dedup)]
    if outlier.is_file():
        has_reason = "reason" in pq.read_schema(outlier).names
        why_outlier = "coalesce(o.reason, 'outlier')" if has_reason else "'outlier'"
        why_outlier = f"CASE WHEN o.keep_outlier THEN 'kept' ELSE {why_outlier} END"
        join = " LEFT JOIN read_parquet(?) o ON o.uid = q.uid"
        params.append(str(outlier))
    sql = (
        "SELECT q.uid, CASE WHEN d.uid IS NULL THEN 'before_dedup' WHEN NOT d.dup_keep THEN d.dup_reason "
        f"ELSE {why_outlier} END FROM diff_uids q LEFT JOIN read_parquet(?) d ON d.uid = q.uid{join}"
    )
    con.register("diff_uids", uids)
    try:
        return dict(con.execute(sql, params).fetchall())
    finally:
        con.unregister("diff_uids")


def _side(con: duckdb.DuckDBPyConnection, ka: KeepDecision, kb: KeepDecision, limit: int | None) -> dict:
    """Rows kept by ``kb`` and not by ``ka``: total, per source, and the first ``limit`` uids."""
    base = (
        f"WITH ka AS ({ka.sql}), kb AS ({kb.sql}), "
        "d AS (SELECT kb.uid, kb.source FROM kb ANTI JOIN ka USING (uid))"
    )
    params = [*ka.params, *kb.params]
    by_source = dict(con.execute(base + " SELECT source, count(*) FROM d GROUP BY source", params).fetchall())
    tail = " SELECT uid, source FROM d ORDER BY uid" + (" LIMIT ?" if limit is not None else "")
    rows = con.execute(base + tail, params + ([limit] if limit is not None else [])).fetchall()
    return {"n": sum(by_source.values()), "by_source": by_source, "rows": rows}


def diff_versions(root: str | Path, a: str, b: str, limit: int | None = None) -> dict[str, Any]:
    """Compare versions ``a`` and ``b``.

    Returns ``counts`` (rows subset, stage, source, a, b, delta of each stage's ``n_out``, with a
    ``total`` row per stage), ``added`` (kept in b, not in a) and ``removed`` (kept in a, not in b),
    each ``{"n", "by_source", "uids": [{"uid", "source", "reason"}]}`` with at most ``limit`` uids;
    ``reason`` says why the other version dropped it (dedup reason, ``outlier``, ``before_dedup``).
    """
    va, vb = version_dir(root, a), version_dir(root, b)
    ka, kb = keep_decision(va), keep_decision(vb)
    con = duckdb.connect()
    out: dict[str, Any] = {
        "a": a,
        "b": b,
        "keep_rule": {a: ka.rule, b: kb.rule},
        "counts": _count_rows(va, vb),
    }
    for name, (x, y, other) in {"added": (ka, kb, va), "removed": (kb, ka, vb)}.items():
        side = _side(con, x, y, limit)
        uids = pa.table({"uid": pa.array([r[0] for r in side["rows"]], pa.string())})
        reasons = _drop_reasons(con, other, uids) if uids.num_rows else {}
        listed = [{"uid": u, "source": s, "reason": reasons.get(u)} for u, s in side["rows"]]
        out[name] = {"n": side["n"], "by_source": side["by_source"], "uids": listed}
    con.close()
    return out

"""``why(uid)``: every recorded decision for one sample, read from the version's per-sample parquet files.

A uid starts with its source name, so only that source's files are scanned. Stages record decisions
as follows: ingest — removed rows with a reason in ``ingest/_rejects``; keyword — the candidates (valid
rows with the matched keywords) in ``keyword/<source>/*.parquet``. A valid row without a match is not
stored (billions of rows for ~0.1 % of hits) unless ``ingest.keep_all_rows`` keeps the normalised copy in
``ingest/<source>/*.parquet``; with it, such a row shows as removed with ``no_keyword_match``; download —
``download/<source>/*/status.parquet``; validity — ``validity/<source>/*.parquet``; dedup —
``dedup/decisions.parquet`` (with the cluster's members and its keeper); outlier —
``outlier/decisions.parquet`` (scores and the pooled-quantile decision).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from rs5m.core.layout import VersionLayout
from rs5m.core.schema import SOURCE_ORDER, Reason, StageName
from rs5m.pipeline import registry
from rs5m.pipeline.download.status import status_path


def _query(con: duckdb.DuckDBPyConnection, files: list[Path], sql: str, uid: str) -> list[tuple]:
    """Run ``sql`` (with ``$files`` and ``$uid`` parameters, never pasted into the text) over ``files``."""
    if not files:
        return []
    return con.execute(sql, {"files": [str(f) for f in files], "uid": uid}).fetchall()


def why(version_dir: Path, uid: str) -> list[dict[str, Any]]:
    """Decisions for ``uid`` in pipeline order; ``ValueError`` when the uid is unknown in this version."""
    source = uid.split("-", 1)[0]
    if source not in SOURCE_ORDER:
        raise ValueError(f"{uid!r} is not an rs5m uid (expected '<source>-<hash>', source in {SOURCE_ORDER})")
    layout = VersionLayout.of(version_dir)
    con = duckdb.connect()
    out: list[dict[str, Any]] = []
    rejected = _query(
        con,
        [p for p in layout.sides(StageName.INGEST, "rejects") if p.parent.name == source],
        "SELECT stage, reason, detail FROM read_parquet($files) WHERE uid = $uid",
        uid,
    )
    for stage, reason, detail in rejected:
        out.append({"stage": stage, "decision": "removed", "reason": reason, "detail": detail})
    candidates = _outputs(layout, StageName.KEYWORD, source)
    cols = "url, caption, extras"
    hits = _query(con, candidates, f"SELECT {cols}, keywords FROM read_parquet($files) WHERE uid = $uid", uid)
    rows = hits or _query(
        con,
        _outputs(layout, StageName.INGEST, source),
        f"SELECT {cols} FROM read_parquet($files) WHERE uid = $uid",
        uid,
    )
    if not rows:
        if not out:
            raise ValueError(
                f"uid {uid!r} is neither a keyword candidate nor an ingest reject of version {layout.name}: "
                "it had "
                "no keyword match or is not in this version (rows without a match are not stored; set "
                "ingest.keep_all_rows: true to keep them)"
            )
        return out
    url, caption, extras = rows[0][:3]
    kept = {"stage": StageName.INGEST.value, "decision": "kept", "url": url, "caption": caption[:300]}
    out.append(kept | {"extras": extras})
    if not hits:
        out.append(
            {"stage": StageName.KEYWORD.value, "decision": "removed", "reason": Reason.NO_KEYWORD_MATCH.value}
        )
        return out
    out.append({"stage": StageName.KEYWORD.value, "decision": "kept", "keywords": list(hits[0][3])})
    for stage in registry.order():  # the stages after keyword that decide per sample, in pipeline order
        reader = _READERS.get(stage)
        if reader is None:
            continue
        decision = reader(con, layout, source, uid)
        if decision is None:
            break
        out.append(decision)
        if decision["decision"] != "kept":
            break
    return out


def _outputs(layout: VersionLayout, stage: StageName, source: str) -> list[Path]:
    return [path for src, _, path in layout.outputs(stage) if src == source]


def _download(
    con: duckdb.DuckDBPyConnection, layout: VersionLayout, source: str, uid: str
) -> dict[str, Any] | None:
    folders = [path for src, _, path in layout.outputs(StageName.DOWNLOAD, suffix="") if src == source]
    files = [status_path(f) for f in folders if status_path(f).exists()]
    sql = "SELECT status, reason, detail, shard, key FROM read_parquet($files) WHERE uid = $uid"
    rows = _query(con, files, sql, uid)
    if not rows:
        return None
    status, reason, detail, shard, key = rows[0]
    if status == "success":
        return {"stage": StageName.DOWNLOAD.value, "decision": "kept", "shard": shard, "key": key}
    return {"stage": StageName.DOWNLOAD.value, "decision": "removed", "reason": reason, "detail": detail}


def _validity(
    con: duckdb.DuckDBPyConnection, layout: VersionLayout, source: str, uid: str
) -> dict[str, Any] | None:
    files = _outputs(layout, StageName.VALIDITY, source)
    cols = "valid, invalid_reason, invalid_detail, width, height, mode, sha256, phash"
    rows = _query(con, files, f"SELECT {cols} FROM read_parquet($files) WHERE uid = $uid", uid)
    if not rows:
        return None
    valid, reason, detail, width, height, mode, sha256, phash = rows[0]
    if not valid:
        return {"stage": StageName.VALIDITY.value, "decision": "removed", "reason": reason, "detail": detail}
    phash_hex = f"{phash:016x}" if phash is not None else None
    info = {"width": width, "height": height, "mode": mode, "sha256": sha256, "phash": phash_hex}
    return {"stage": StageName.VALIDITY.value, "decision": "kept", **info}


def _dedup(
    con: duckdb.DuckDBPyConnection, layout: VersionLayout, source: str, uid: str
) -> dict[str, Any] | None:
    path = layout.barrier_file(StageName.DEDUP, "decisions.parquet")
    if not path.exists():
        return None
    cols = "dup_cluster, dup_keep, dup_reason, dup_keeper_uid"
    sql = f"SELECT {cols} FROM read_parquet($files) WHERE uid = $uid"
    rows = _query(con, [path], sql, uid)
    if not rows:
        return None
    cluster, keep, reason, keeper = rows[0]
    out: dict[str, Any] = {"stage": StageName.DEDUP.value, "decision": "kept" if keep else "removed"}
    if not keep:
        out["reason"] = reason
    if cluster is not None:
        members = con.execute(
            "SELECT uid, source, dup_keep, dup_reason FROM read_parquet(?) "
            "WHERE dup_cluster = ? ORDER BY uid",
            [str(path), cluster],
        ).fetchall()
        listed = [{"uid": m[0], "source": m[1], "keep": m[2], "reason": m[3]} for m in members]
        out |= {"cluster": cluster, "keeper": keeper, "members": listed}
    return out


def _outlier(
    con: duckdb.DuckDBPyConnection, layout: VersionLayout, source: str, uid: str
) -> dict[str, Any] | None:
    path = layout.barrier_file(StageName.OUTLIER, "decisions.parquet")
    if not path.exists():
        return None
    cur = con.execute("SELECT * FROM read_parquet($files) WHERE uid = $uid", {"files": str(path), "uid": uid})
    found = cur.fetchall()
    if not found:
        return None
    row = dict(zip([d[0] for d in cur.description], found[0], strict=True))
    scores = {k: v for k, v in row.items() if k.startswith(("s_", "c_")) and v is not None}
    if row.get("keep_outlier"):
        return {"stage": StageName.OUTLIER.value, "decision": "kept", **scores}
    return {"stage": StageName.OUTLIER.value, "decision": "removed", "reason": row.get("reason"), **scores}


_READERS = {
    StageName.DOWNLOAD.value: _download,
    StageName.VALIDITY.value: _validity,
    StageName.DEDUP.value: _dedup,
    StageName.OUTLIER.value: _outlier,
}

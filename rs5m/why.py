"""``why(uid)``: every recorded decision for one sample, read from the version's per-sample parquet files.

A uid starts with its source name, so only that source's files are scanned. Stages record decisions
as follows: ingest — kept rows in ``ingest/<source>/*.parquet``, removed rows with a reason in
``ingest/_rejects``; keyword — kept rows (with the matched keywords) in ``keyword/<source>/*.parquet``;
an ingested row absent there was removed as ``no_keyword_match`` (derived, not stored, because at
billions of rows a per-row record of non-matches would double the metadata on disk).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from rs5m.schema import SOURCE_ORDER, Reason, Stage


def _query(con: duckdb.DuckDBPyConnection, files: list[Path], sql: str, uid: str) -> list[tuple]:
    if not files:
        return []
    return con.execute(sql.format(files=[str(f) for f in files]), [uid]).fetchall()


def why(version_dir: Path, uid: str) -> list[dict[str, Any]]:
    """Decisions for ``uid`` in pipeline order; ``ValueError`` when the uid is unknown in this version."""
    source = uid.split("-", 1)[0]
    if source not in SOURCE_ORDER:
        raise ValueError(f"{uid!r} is not an rs5m uid (expected '<source>-<hash>', source in {SOURCE_ORDER})")
    ingest = version_dir / Stage.INGEST.value
    con = duckdb.connect()
    out: list[dict[str, Any]] = []
    rejected = _query(
        con,
        sorted((ingest / "_rejects" / source).glob("*.parquet")),
        "SELECT stage, reason, detail FROM read_parquet({files}) WHERE uid = ?",
        uid,
    )
    for stage, reason, detail in rejected:
        out.append({"stage": stage, "decision": "removed", "reason": reason, "detail": detail})
    rows = _query(
        con,
        sorted((ingest / source).glob("*.parquet")),
        "SELECT url, caption, extras FROM read_parquet({files}) WHERE uid = ?",
        uid,
    )
    if not rows:
        if not out:
            raise ValueError(f"uid {uid!r} not found in version folder {version_dir}")
        return out
    url, caption, extras = rows[0]
    out.append(
        {"stage": "ingest", "decision": "kept", "url": url, "caption": caption[:300], "extras": extras}
    )
    kw_dir = version_dir / Stage.KEYWORD.value / source
    if not kw_dir.is_dir():
        return out
    hits = _query(
        con, sorted(kw_dir.glob("*.parquet")), "SELECT keywords FROM read_parquet({files}) WHERE uid = ?", uid
    )
    if hits:
        out.append({"stage": "keyword", "decision": "kept", "keywords": list(hits[0][0])})
    else:
        out.append({"stage": "keyword", "decision": "removed", "reason": Reason.NO_KEYWORD_MATCH.value})
    return out

"""Stored samples and per-rater progress, as functions of a connection run on the store's thread.

A sample is drawn once per ``SampleSpec`` (its ``sample_id``) and stored with its items; later runs
with the same spec load it, so a rater who stops and comes back sees the same pairs in the same order.
Progress: a pair is done for a rater when ``ratings`` has their row (scored or broken); the next
pair is the first not done and not skipped, then the first skipped one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import duckdb

from rs5m.rating.sampling import SampleSpec

ITEM_COLUMNS = [
    "pos",
    "uid",
    "subset",
    "source",
    "stage",
    "decision",
    "caption",
    "info",
    "image_kind",
    "image_ref",
    "image_key",
]


def ensure_sample(
    con: duckdb.DuckDBPyConnection, spec: SampleSpec, draw: Callable[[], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The stored items of ``spec``'s sample, drawing and storing them first when there are none."""
    items = load_items(con, spec.sample_id)
    if items:
        return items
    items = draw()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM rating_sample_items WHERE sample_id = ?", [spec.sample_id])
        con.execute("DELETE FROM rating_samples WHERE sample_id = ?", [spec.sample_id])
        con.execute(
            "INSERT INTO rating_samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                spec.sample_id,
                spec.version,
                spec.subset,
                spec.source,
                spec.audit,
                spec.seed,
                spec.n,
                len(items),
                now,
            ],
        )
        rows = [[spec.sample_id, it["pos"], spec.version, *_item_values(it)] for it in items]
        con.executemany(f"INSERT INTO rating_sample_items VALUES ({', '.join(['?'] * 13)})", rows)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return load_items(con, spec.sample_id)


def _item_values(it: dict[str, Any]) -> list[Any]:
    info = json.dumps(it["info"], ensure_ascii=False, default=str)
    return [it["uid"], it["subset"], it["source"], it["stage"], it["decision"], it["caption"], info,
            it["image_kind"], it["image_ref"], it["image_key"]]  # fmt: skip


def load_items(con: duckdb.DuckDBPyConnection, sample_id: str) -> list[dict[str, Any]]:
    """The items of a stored sample in rating order (``info`` decoded); empty when there is none."""
    rows = con.execute(
        f"SELECT {', '.join(ITEM_COLUMNS)} FROM rating_sample_items WHERE sample_id = ? ORDER BY pos",
        [sample_id],
    ).fetchall()
    items = [dict(zip(ITEM_COLUMNS, r, strict=True)) for r in rows]
    for it in items:
        it["info"] = json.loads(it["info"]) if it["info"] else {}
    return items


def progress(con: duckdb.DuckDBPyConnection, sample_id: str, version: str, rater: str) -> dict[str, Any]:
    """Counts for one rater over one sample: total, rated, broken, skipped (not since rated), next_pos."""
    rows = con.execute(
        """SELECT i.pos, r.uid IS NOT NULL AS done, r.broken IS NOT NULL AS broken,
                  i.uid IN (SELECT uid FROM rating_log WHERE version = $v AND rater = $r AND action = 'skip')
                      AS skipped
           FROM rating_sample_items i
           LEFT JOIN ratings r ON r.version = $v AND r.uid = i.uid AND r.rater = $r
           WHERE i.sample_id = $s ORDER BY i.pos""",
        {"v": version, "r": rater, "s": sample_id},
    ).fetchall()
    todo = [pos for pos, done, _, skipped in rows if not done and not skipped]
    skipped = [pos for pos, done, _, sk in rows if not done and sk]
    nxt = (todo or skipped or [None])[0]
    return {
        "rater": rater,
        "total": len(rows),
        "rated": sum(1 for _, done, broken, _ in rows if done and not broken),
        "broken": sum(1 for _, _, broken, _ in rows if broken),
        "skipped": len(skipped),
        "next_pos": nxt,
    }

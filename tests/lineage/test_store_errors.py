"""A lineage database DuckDB cannot read is one ``DatabaseUnreadable`` naming the file (issue #17 item 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rs5m.lineage import store
from rs5m.lineage.store import DatabaseUnreadable


def test_a_file_of_random_bytes(tmp_path: Path) -> None:
    db = tmp_path / "lineage.duckdb"
    db.write_bytes(bytes(range(256)) * 64)
    for read_only in (True, False):
        with pytest.raises(DatabaseUnreadable) as info:
            store.connect(db, read_only=read_only)
        text = str(info.value)
        assert (
            text.startswith(f"cannot read the database {db} (") and "damaged or not a DuckDB database" in text
        )
        assert "\n" not in text


def test_a_damaged_block_found_by_a_query(tmp_path: Path) -> None:
    db = tmp_path / "lineage.duckdb"
    with store.connect(db) as con:
        con.execute(
            "INSERT INTO stage_stats SELECT 'v1', 'pub11', 'laion2b', 'ingest', 'p' || i, i, i "
            "FROM range(200000) t(i)"
        )
    data = db.read_bytes()
    damaged = tmp_path / "damaged.duckdb"
    for offset in range(65536, len(data), 65536):  # a block of table data: the file opens, the query fails
        copy = bytearray(data)
        copy[offset : offset + 64] = bytes(b ^ 0xFF for b in copy[offset : offset + 64])
        damaged.write_bytes(bytes(copy))
        try:
            con = store.connect(damaged, read_only=True)
        except DatabaseUnreadable:
            continue
        try:
            with store.named_errors(damaged):
                store.funnel_rows(con, "v1")
        except DatabaseUnreadable as exc:
            assert str(exc).startswith(f"cannot read the database {damaged} (Corrupt database file")
            return
        except ValueError:
            continue
        finally:
            con.close()
    pytest.skip("no block of this DuckDB file fails only at query time")


def test_an_unknown_version_is_named_with_the_known_ones(tmp_path: Path) -> None:
    db = tmp_path / "lineage.duckdb"
    store.set_version_status(db, "v1", "complete", "0" * 64, str(tmp_path))
    with store.connect(db, read_only=True) as con:
        store.require_version(con, "v1")
        assert store.reason_rows(con, "nope") == []  # what `funnel --reasons` printed: an empty table
        with pytest.raises(ValueError, match=r"^unknown version 'nope' under data \(known: v1\)$"):
            store.require_version(con, "nope", "data")

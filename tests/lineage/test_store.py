"""Lineage store: stats files -> DuckDB -> funnel, reasons, invariants."""

from __future__ import annotations

from pathlib import Path

import pytest

from rs5m.core.layout import DataRoot
from rs5m.core.stats import PartitionStats, read_done
from rs5m.lineage import store as lineage


def _stats(vdir: Path, stage: str, source: str, part: str, n_in: int, n_out: int, **removed: int) -> None:
    s = PartitionStats(stage=stage, source=source, partition=part, n_in=n_in, n_out=n_out, removed=removed)
    s.write(vdir / stage / "_stats" / source / f"{part}.json")


def test_invariant_is_enforced(tmp_path: Path) -> None:
    bad = PartitionStats(
        stage="ingest", source="cc12m", partition="p", n_in=5, n_out=3, removed={"bad_url": 1}
    )
    with pytest.raises(ValueError, match="n_in=5"):
        bad.write(tmp_path / "s.json")
    assert not (tmp_path / "s.json").exists()


def test_corrupt_stats_file_is_not_done(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text("{not json")
    assert read_done(p) is None
    p.write_text('{"stage": "ingest", "source": "x", "partition": "p", "n_in": 3, "n_out": 1, "removed": {}}')
    assert read_done(p) is None  # parses, but counts do not add up


def test_funnel_sums_partitions_and_leaves_missing_stages_empty(tmp_path: Path) -> None:
    vdir = tmp_path / "versions" / "v1"
    _stats(vdir, "ingest", "laion2b", "a", 100, 97, malformed_row=2, bad_url=1)
    _stats(vdir, "ingest", "laion2b", "b", 50, 50)
    _stats(vdir, "ingest", "cc12m", "c", 20, 18, missing_caption=2)
    _stats(vdir, "keyword", "laion2b", "a-00000", 97, 7, no_keyword_match=90)
    _stats(vdir, "keyword", "laion2b", "b-00000", 50, 3, no_keyword_match=47)
    _stats(vdir, "keyword", "cc12m", "c-00000", 18, 2, no_keyword_match=16)
    db = DataRoot.of(tmp_path).lineage_db
    lineage.set_version_status(db, "v1", "running", "h", str(tmp_path))
    assert lineage.load_version(db, "v1", vdir) == 6
    assert lineage.load_version(db, "v1", vdir) == 6  # reload replaces, never doubles
    with lineage.connect(db, read_only=True) as con:
        rows = lineage.funnel_rows(con, "v1")
        reasons = lineage.reason_rows(con, "v1")
        assert lineage.latest_version(con) == "v1"
    assert [r["Name"] for r in rows] == ["LAION2B", "CC12M", "Total"]
    assert rows[0]["Amount"] == 150 and rows[0]["After Keyword Filtering"] == 10
    assert rows[1]["Amount"] == 20 and rows[1]["After Keyword Filtering"] == 2
    assert rows[2]["Amount"] == 170 and rows[2]["After Keyword Filtering"] == 12
    for row in rows:
        assert row["Download Image"] is None and row["Remain"] is None
    by = {(r["source"], r["stage"], r["reason"]): r["n"] for r in reasons}
    assert by[("laion2b", "ingest", "malformed_row")] == 2
    assert by[("laion2b", "keyword", "no_keyword_match")] == 137
    assert by[("cc12m", "ingest", "missing_caption")] == 2


def test_unknown_version_is_a_clear_error(tmp_path: Path) -> None:
    db = DataRoot.of(tmp_path).lineage_db
    lineage.set_version_status(db, "v1", "running", "h", str(tmp_path))
    with lineage.connect(db, read_only=True) as con, pytest.raises(ValueError, match="unknown version"):
        lineage.funnel_rows(con, "nope")
    with pytest.raises(FileNotFoundError, match="rs5m build"):
        lineage.connect(tmp_path / "missing.duckdb", read_only=True)

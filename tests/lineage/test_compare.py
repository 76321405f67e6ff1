"""The funnel beside RS5M's: the published table as data, stage rates, flags, the CLI and the artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from rs5m.core.stats import PartitionStats
from rs5m.lineage import store as lineage
from rs5m.lineage.compare import RATES, compare_funnel, flagged, rs5m_pub11, stage_rates


def test_published_table_is_consistent() -> None:
    rows = rs5m_pub11()
    assert [r["Name"] for r in rows][:3] == ["LAION2B", "COYO700M", "LAIONCOCO"] and len(rows) == 12
    for r in rows:
        removed = (
            r["Invalid Image (Removed)"] + r["Duplicate Image (Removed)"] + r["Outlier images (Removed)"]
        )
        assert r["Download Image"] - removed == r["Remain"], r["Name"]
    total = rows[-1]
    for col in ("After Keyword Filtering", "Download Image", "Duplicate Image (Removed)", "Remain"):
        assert sum(r[col] for r in rows[:-1]) == total[col], col
    dup = {r["Name"]: round(stage_rates(r)["duplicate"], 1) for r in rows}
    # the per-source duplicate rates the reference quotes (% of downloaded)
    assert dup | {"LAION400M": 58.7, "WIT": 79.0, "COYO700M": 43.4, "LAION2B": 19.7, "LAIONCOCO": 16.4} == dup
    post_dedup = (
        total["Download Image"] - total["Invalid Image (Removed)"] - total["Duplicate Image (Removed)"]
    )
    assert post_dedup == 4_019_225  # the pool RS5M's outlier quantiles were taken over


def _row(name: str, amount: int, hits: int, down: int | None, inv: int, dup: int, out: int) -> dict:
    rest = None if down is None else down - inv - dup - out
    vals = [amount, hits, down, *(None if down is None else v for v in (inv, dup, out)), rest]
    return {"Name": name, **dict(zip(list(lineage.FUNNEL_COLUMNS[1:]), vals, strict=True))}


def test_rates_and_flags_on_a_handmade_funnel() -> None:
    ours = [
        _row("LAION2B", 1000, 100, 80, 0, 40, 10),
        _row("VG", 50, 10, None, 0, 0, 0),
        _row("XX", 10, 5, 5, 0, 0, 0),
    ]
    rates = stage_rates(ours[0])
    assert rates == pytest.approx(
        {"hit rate": 10.0, "download yield": 80.0, "invalid": 0.0, "duplicate": 50.0, "outlier": 25.0,
         "remain": 37.5}
    )  # fmt: skip
    assert set(stage_rates(ours[1]).values()) - {None} == {20.0}  # only the hit rate before download
    rows = compare_funnel(ours)
    assert len(rows) == 3 * len(RATES)
    by = {(r["Name"], r["Rate"]): r for r in rows}
    ref = stage_rates(rs5m_pub11()[0])
    dup = by[("LAION2B", "duplicate")]
    assert dup["RS5M %"] == pytest.approx(ref["duplicate"], abs=1e-3)
    assert dup["Diff (points)"] == pytest.approx(50.0 - ref["duplicate"], abs=0.01) and dup["Flag"] == "!"
    assert by[("LAION2B", "invalid")]["Flag"] == ""  # 0 % vs 0.006 %
    assert by[("VG", "duplicate")]["Ours %"] is None and by[("VG", "duplicate")]["Flag"] == ""
    assert by[("XX", "remain")]["RS5M %"] is None and by[("XX", "remain")]["Flag"] == ""
    loose = compare_funnel(ours, flag_points=100)
    assert not flagged(loose) and {r["Rate"] for r in flagged(rows)} == {"hit rate", "duplicate", "remain"}
    with pytest.raises(ValueError):
        compare_funnel(ours, flag_points=-1)


def _stats(vdir: Path, stage: str, source: str, n_in: int, n_out: int, **removed: int) -> None:
    s = PartitionStats(stage=stage, source=source, partition="p0", n_in=n_in, n_out=n_out, removed=removed)
    s.write(vdir / stage / "_stats" / source / "p0.json")


@pytest.fixture()
def lineage_root(tmp_path: Path) -> Path:
    vdir = tmp_path / "versions" / "v1"
    _stats(vdir, "ingest", "laion2b", 1000, 1000)
    _stats(vdir, "keyword", "laion2b", 1000, 100, no_keyword_match=900)
    _stats(vdir, "download", "laion2b", 100, 88, download_failed=12)  # yield 88 %: RS5M 87.7 %
    _stats(vdir, "validity", "laion2b", 88, 88)
    _stats(vdir, "dedup", "laion2b", 88, 44, semantic_duplicate=30, url_duplicate=14)  # 50 %: RS5M 19.7 %
    _stats(vdir, "outlier", "laion2b", 44, 30, outlier_vlm=14)
    db = tmp_path / "lineage.duckdb"
    lineage.set_version_status(db, "v1", "complete", "h", str(tmp_path))
    lineage.load_version(db, "v1", vdir)
    return tmp_path


def test_cli_compare_rs5m(lineage_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(lineage_root)
    assert main(["funnel", "--root", root, "--compare", "rs5m", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by = {(r["Name"], r["Rate"]): r for r in rows}
    assert (
        by[("LAION2B", "download yield")]["Ours %"] == 88.0
        and by[("LAION2B", "download yield")]["Flag"] == ""
    )
    assert by[("LAION2B", "duplicate")]["Flag"] == "!" and by[("Total", "duplicate")]["Ours %"] == 50.0
    assert main(["funnel", "--root", root, "--compare", "rs5m", "--flag-points", "40"]) == 0
    text = capsys.readouterr().out
    assert (
        "version v1" in text
        and "Diff (points)" in text
        and "rates differ from RS5M's by more than 40" in text
    )
    assert main(["funnel", "--root", root, "--compare", "rs5m", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("Name,Rate,Ours %,RS5M %,Diff (points),Flag")


def test_task_publishes_the_comparison(lineage_root: Path, prefect_harness: None) -> None:
    import asyncio

    from prefect import flow
    from prefect.client.orchestration import get_client

    from rs5m.config import BuildConfig
    from tasks.report import publish_funnel_comparison

    cfg = BuildConfig(version="v1", root=str(lineage_root), sources=[{"name": "laion2b", "files": ["x"]}])

    @flow
    def report() -> list[dict]:
        return publish_funnel_comparison(cfg, flag_points=10)

    rows = report()
    assert flagged(rows) and rows == compare_funnel(_funnel(lineage_root))

    async def _read() -> list:
        async with get_client() as client:
            return await client.read_artifacts()

    keys = [a.key for a in asyncio.run(_read())]
    assert "funnel-vs-rs5m-v1" in keys


def _funnel(root: Path) -> list[dict]:
    with lineage.connect(root / "lineage.duckdb", read_only=True) as con:
        return lineage.funnel_rows(con, "v1")

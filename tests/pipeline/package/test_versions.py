"""Versions: list, diff after a changed dedup threshold and after a planted outlier decision, the CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from cli.commands import loader_check
from cli.commands import versions as versions_cmd
from rs5m.config import DedupConfig
from rs5m.lineage.versions import diff_versions, list_versions
from rs5m.pipeline.dedup import stage as dedup_stage
from rs5m.pipeline.package.keep import RULE_OUTLIER, keep_decision
from rs5m.pipeline.package.pub11 import package_pub11
from rs5m.shards import iter_records
from tests.pipeline.package.conftest import PKG_CFG, derive_version, load_lineage


def kept(vdir: Path) -> set[str]:
    t = pq.read_table(vdir / "dedup/decisions.parquet")
    return set(t.filter(t["dup_keep"])["uid"].to_pylist())


@pytest.fixture(scope="module")
def v2(v1: Path) -> Path:
    """v1's downloads re-deduplicated with near_threshold 0 (near duplicates survive), packaged."""
    vdir = derive_version(v1, "v2")
    sources = sorted(p.name for p in (vdir / "validity").iterdir() if p.name != "_stats")
    dedup_stage.run_dedup(vdir, sources, DedupConfig(near_threshold=0))
    package_pub11(vdir, PKG_CFG)
    load_lineage(vdir)
    return vdir


@pytest.fixture(scope="module")
def v3(v1: Path) -> Path:
    """v1 plus an outlier decision dropping every 40th kept uid, with two score columns, packaged."""
    vdir = derive_version(v1, "v3", ("ingest", "keyword", "download", "validity", "dedup"))
    dec = pq.read_table(vdir / "dedup/decisions.parquet")
    dec = dec.filter(dec["dup_keep"]).sort_by("uid")
    uids = dec["uid"].to_pylist()
    keep = [i % 40 != 7 for i in range(len(uids))]
    scores = [0.01 * (i % 50) for i in range(len(uids))]
    table = pa.table({"uid": uids, "source": dec["source"], "s_vlm": scores,
                      "c_rs": pa.array([1.0 - s for s in scores]), "keep_outlier": keep,
                      "reason": [None if k else "outlier_vlm" for k in keep]})  # fmt: skip
    (vdir / "outlier").mkdir()
    pq.write_table(table, vdir / "outlier/decisions.parquet")
    package_pub11(vdir, PKG_CFG)
    load_lineage(vdir)
    return vdir


def test_diff_after_changed_near_threshold(pkg_root: Path, v1: Path, v2: Path) -> None:
    added = kept(v2) - kept(v1)
    assert added and not kept(v1) - kept(v2)  # a stricter threshold only keeps more
    res = diff_versions(pkg_root, "v1", "v2")
    assert {u["uid"] for u in res["added"]["uids"]} == added and res["added"]["n"] == len(added)
    assert {u["reason"] for u in res["added"]["uids"]} == {"near_duplicate"}
    assert res["removed"] == {"n": 0, "by_source": {}, "uids": []}
    rows = {(r["stage"], r["source"]): r for r in res["counts"]}
    assert rows[("dedup", "total")]["delta"] == len(added) == rows[("package", "total")]["delta"]
    assert rows[("ingest", "total")]["delta"] == 0
    packaged = {r.key for r in iter_records(v2 / "package/rs5m")}
    assert added <= packaged and packaged == kept(v2)


def test_diff_with_outlier_decision_and_scores(pkg_root: Path, v1: Path, v3: Path) -> None:
    keep = keep_decision(v3)
    assert keep.rule == RULE_OUTLIER and keep.score_cols == ("s_vlm", "c_rs")
    out = pq.read_table(v3 / "outlier/decisions.parquet")
    dropped = set(out.filter(pc.invert(out["keep_outlier"]))["uid"].to_pylist())
    res = diff_versions(pkg_root, "v1", "v3", limit=2)
    assert res["removed"]["n"] == len(dropped) > 2 and len(res["removed"]["uids"]) == 2
    assert all(u["uid"] in dropped and u["reason"] == "outlier_vlm" for u in res["removed"]["uids"])
    assert res["keep_rule"] == {"v1": "dedup.dup_keep", "v3": RULE_OUTLIER}
    recs = list(iter_records(v3 / "package/open_clip"))
    assert {r.key for r in recs} == kept(v1) - dropped
    meta = json.loads(recs[0].members["json"])
    assert set(meta["scores"]) == {"s_vlm", "c_rs"}


def test_outlier_decision_missing_rows_is_an_error(v3: Path, tmp_path: Path) -> None:
    broken = derive_version(v3, "v-broken", ("dedup",))
    (broken / "outlier").mkdir()
    table = pq.read_table(v3 / "outlier/decisions.parquet")
    pq.write_table(table.slice(1), broken / "outlier/decisions.parquet")
    with pytest.raises(ValueError, match="no row for 1 dedup-kept uids"):
        keep_decision(broken)


def test_list_versions(pkg_root: Path, v1: Path, v2: Path) -> None:
    rows = {r["version"]: r for r in list_versions(pkg_root)}
    assert {"v1", "v2"} <= set(rows)
    assert rows["v1"]["status"] == "incomplete" and rows["v2"]["config_hash"] == "derived-v2"
    assert rows["v2"]["kept"] == rows["v2"]["packaged"] == len(kept(v2))
    assert rows["v1"]["shards"] > 0 and rows["v1"]["ingested"] > rows["v1"]["kept"]


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rs5m")
    sub = parser.add_subparsers(dest="command", required=True)
    versions_cmd.register(sub)
    loader_check.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_versions(pkg_root: Path, v2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["versions", "list", "--root", str(pkg_root)]) == 0
    assert "v2" in capsys.readouterr().out
    assert cli(["versions", "diff", "v1", "v2", "--root", str(pkg_root), "--show", "1"]) == 0
    out = capsys.readouterr().out
    assert "added (kept in v2, not in v1): " in out and "near_duplicate" in out and "more (use --show)" in out
    with pytest.raises(ValueError, match=r"unknown version 'nope' .*known: .*v1"):
        cli(["versions", "diff", "v1", "nope", "--root", str(pkg_root)])


def test_cli_loader_check(pkg_root: Path, v1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["loader-check", "--root", str(pkg_root), "--version", "v1", "--workers", "0", "--verify"]
    assert cli([*argv, "--batches", "2", "--batch-size", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in lines[1:]] == ["rs5m", "open_clip"]
    assert all("2 batches, 16 images [8x3x224x224]" in ln and "manifest verified" in ln for ln in lines[1:])

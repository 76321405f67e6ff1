"""The whole build-rs5m flow on the sample world, under a Prefect test harness.

Asserts the exact per-source Amount, After Keyword Filtering and ingest rejects that the sample world
planted (expected.json is written by the generator from its own construction, not by a filter).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from rs5m.core.layout import DataRoot
from rs5m.core.schema import DISPLAY_NAMES
from rs5m.core.stats import PartitionStats
from rs5m.lineage import store as lineage
from rs5m.lineage.versions import diff_versions
from rs5m.lineage.why import why
from rs5m.sample import write_world
from tests.faults._builds import stop_processes


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("world")
    expected = write_world(out, seed=0)
    cfg = yaml.safe_load((out / "build.yaml").read_text())
    cfg["dask"] = {"n_workers": 1, "threads_per_worker": 2, "processes": False}
    (out / "build-test.yaml").write_text(yaml.safe_dump(cfg))
    return out, expected


def _run(
    world_dir: Path,
    root: Path,
    version: str,
    address: str | None = None,
    config: str = "build-test.yaml",
    **kw: object,
) -> list[dict]:
    from flows.build_rs5m import build_rs5m

    return build_rs5m(
        config=str(world_dir / config), root=str(root), version=version, dask_address=address, **kw
    )


COLUMNS = {
    "After Keyword Filtering": "after_keyword",
    "Download Image": "downloaded",
    "Invalid Image (Removed)": "invalid",
    "Duplicate Image (Removed)": "duplicate",
}


def _check_counts(rows: list[dict], expected: dict) -> None:
    by_name = {r["Name"]: r for r in rows}
    for source, exp in expected["sources"].items():
        row = by_name[DISPLAY_NAMES[source]]
        assert row["Amount"] == exp["amount"], source
        for column, key in COLUMNS.items():
            assert row[column] == exp["funnel"][key], (source, column)
        removed = (
            row["Invalid Image (Removed)"]
            + row["Duplicate Image (Removed)"]
            + row["Outlier images (Removed)"]
        )
        assert row["Remain"] == row["Download Image"] - removed, source
    total = by_name["Total"]
    assert total["Amount"] == sum(e["amount"] for e in expected["sources"].values())
    # pooled quantile: keep the top 90 % of s_vlm over every source (no detector in this config)
    pooled = total["Download Image"] - total["Invalid Image (Removed)"] - total["Duplicate Image (Removed)"]
    assert total["Remain"] == math.ceil(0.9 * pooled)


def test_build_flow_on_sample_world(world: tuple[Path, dict], tmp_path: Path, prefect_harness: None) -> None:
    world_dir, expected = world
    root = tmp_path / "data"
    rows = _run(world_dir, root, "t1")
    _check_counts(rows, expected)
    vdir = root / "versions" / "t1"
    for p in vdir.glob("*/_stats/**/*.json"):
        PartitionStats.read(p)  # invariant n_in = n_out + removed holds for every partition
    with lineage.connect(DataRoot.of(root).lineage_db, read_only=True) as con:
        _check_counts(lineage.funnel_rows(con, "t1"), expected)
        reasons = lineage.reason_rows(con, "t1")
    got = {(r["source"], r["reason"]): r["n"] for r in reasons if r["stage"] == "ingest"}
    for source, exp in expected["sources"].items():
        for reason, n in exp["rejected"].items():
            assert got.get((source, reason), 0) == n, (source, reason)
    with lineage.connect(DataRoot.of(root).lineage_db, read_only=True) as con:
        hits = {r["keyword"]: r["n"] for r in lineage.keyword_rows(con, "t1")}
    per_keyword: dict[str, int] = {}
    for exp in expected["sources"].values():
        for kw, n in exp["per_keyword"].items():
            per_keyword[kw] = per_keyword.get(kw, 0) + n
    # exact duplicate records leave at the keyword stage, so hits count each record once
    assert sum(hits.values()) <= sum(per_keyword.values()) and set(hits) <= set(per_keyword)
    dups = {r["source"]: r["n"] for r in reasons if r["reason"] == "duplicate_record"}
    assert dups == {
        s: e["planted"]["duplicate_record_hits"]
        for s, e in expected["sources"].items()
        if e["planted"]["duplicate_record_hits"]
    }
    assert (vdir / "COMPLETE").exists() and (vdir / "config.json").exists()

    # why: a sample kept through dedup, and a laioncoco copy that lost its URL cluster to laion2b
    decisions = pq.read_table(vdir / "dedup" / "decisions.parquet").to_pylist()
    kept = next(d for d in decisions if d["dup_keep"])
    trail = why(vdir, kept["uid"])
    assert [d["stage"] for d in trail][:5] == ["ingest", "keyword", "download", "validity", "dedup"]
    assert all(d["decision"] == "kept" for d in trail) and trail[1]["keywords"]
    lost = next(d for d in decisions if d["source"] == "laioncoco" and not d["dup_keep"])
    last = why(vdir, lost["uid"])[-1]
    assert last["reason"] == "url_duplicate" and last["keeper"].startswith("laion2b-")

    # rerun of the same version is a no-op with the same funnel
    before = {p: p.stat().st_mtime_ns for p in vdir.rglob("*.parquet")}
    assert _run(world_dir, root, "t1") == rows
    assert {p: p.stat().st_mtime_ns for p in vdir.rglob("*.parquet")} == before

    # an incremental version reuses every partition of the unchanged inputs (hard links), same funnel
    assert _run(world_dir, root, "t2", base_version="latest") == rows
    tar = next((vdir / "download").rglob("*.tar"))
    assert (root / "versions" / "t2" / tar.relative_to(vdir)).stat().st_ino == tar.stat().st_ino
    assert (root / "versions" / "t2" / "reports" / "funnel.png").stat().st_size > 1000

    # a changed outlier threshold reuses the scores (same files) and reruns only the decision
    cfg = yaml.safe_load((world_dir / "build-test.yaml").read_text())
    cfg["outlier"] = {"keep_top_vlm": 0.8}
    (world_dir / "build-test-80.yaml").write_text(yaml.safe_dump(cfg))
    rows80 = _run(world_dir, root, "t3", config="build-test-80.yaml", base_version="t1")
    score = next((vdir / "outlier_score").glob("*/*.parquet"))
    assert (root / "versions" / "t3" / score.relative_to(vdir)).stat().st_ino == score.stat().st_ino
    total80 = {r["Name"]: r for r in rows80}["Total"]
    pooled = (
        total80["Download Image"] - total80["Invalid Image (Removed)"] - total80["Duplicate Image (Removed)"]
    )
    assert total80["Remain"] == math.ceil(0.8 * pooled) < {r["Name"]: r for r in rows}["Total"]["Remain"]
    diff = diff_versions(root, "t1", "t3")
    assert diff["removed"]["n"] == {r["Name"]: r for r in rows}["Total"]["Remain"] - total80["Remain"]


def test_a_build_that_cannot_start_leaves_no_version(
    world: tuple[Path, dict], tmp_path: Path, prefect_harness: None
) -> None:
    world_dir, _ = world
    root = tmp_path / "data"
    with pytest.raises(ValueError, match=r"base version 'nope' does not exist under .*versions \(complete"):
        _run(world_dir, root, "v1", base_version="nope")
    with pytest.raises(ValueError, match=r"no complete version to build incrementally from under .*lineage"):
        _run(world_dir, root, "v1", base_version="latest")
    cfg = yaml.safe_load((world_dir / "build-test.yaml").read_text())
    cfg["sources"][0]["files"] = ["missing-a/*.parquet"]
    cfg["sources"][3]["files"] = ["missing-b.parquet"]
    (world_dir / "build-missing.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(
        ValueError, match=r"(?s)2 input problem\(s\); nothing was started:.*laion2b.*laion400m"
    ):
        _run(world_dir, root, "v1", config="build-missing.yaml")
    assert not (root / "versions").exists() and not DataRoot.of(root).lineage_db.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_build_flow_on_existing_dask_cluster(
    world: tuple[Path, dict], tmp_path: Path, prefect_harness: None
) -> None:
    world_dir, expected = world
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    procs = [
        subprocess.Popen(
            [*dask, "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"], env=env
        )
    ]
    try:
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "distributed.cli.dask_worker",
                        address,
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--dashboard-address",
                        ":0",
                        "--local-directory",
                        str(tmp_path / "dask"),
                    ],
                    env=env,
                )
            )
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        rows = _run(world_dir, tmp_path / "data", "cluster", address=address)
        _check_counts(rows, expected)
    finally:
        stop_processes(procs)
        shutil.rmtree(tmp_path / "dask", ignore_errors=True)
    time.sleep(0.1)
    assert (
        json.loads((tmp_path / "data" / "versions" / "cluster" / "config.json").read_text())["config"][
            "dask"
        ]["address"]
        == address
    )

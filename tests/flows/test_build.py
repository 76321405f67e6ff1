"""The whole build-rs5m flow on the sample world, under a Prefect test harness.

The session's one reference build (``sample_build``, tests/conftest.py) is checked in place and rerun
there as a no-op; an incremental version and a changed threshold each build on their own hard-linked copy.

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
from tests.faults._builds import Built, World, linked_copy, stop_processes, with_config


def _run(
    world: World,
    root: Path,
    version: str,
    address: str | None = None,
    config: Path | None = None,
    **kw: object,
) -> list[dict]:
    from flows.build_rs5m import build_rs5m

    return build_rs5m(
        config=str(config or world.config), root=str(root), version=version, dask_address=address, **kw
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


def test_build_flow_on_sample_world(sample_world: World, sample_build: Built) -> None:
    """The session's reference build (flow build-rs5m, version v1): counts, lineage, reasons, ``why``."""
    expected, root, version = sample_world.expected, sample_build.root, sample_build.version
    vdir = sample_build.vdir
    _check_counts(sample_build.rows, expected)
    for p in vdir.glob("*/_stats/**/*.json"):
        PartitionStats.read(p)  # invariant n_in = n_out + removed holds for every partition
    with lineage.connect(DataRoot.of(root).lineage_db, read_only=True) as con:
        _check_counts(lineage.funnel_rows(con, version), expected)
        reasons = lineage.reason_rows(con, version)
    got = {(r["source"], r["reason"]): r["n"] for r in reasons if r["stage"] == "ingest"}
    for source, exp in expected["sources"].items():
        for reason, n in exp["rejected"].items():
            assert got.get((source, reason), 0) == n, (source, reason)
    with lineage.connect(DataRoot.of(root).lineage_db, read_only=True) as con:
        hits = {r["keyword"]: r["n"] for r in lineage.keyword_rows(con, version)}
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

    # why: a sample kept to the end, and a laioncoco copy that lost its URL cluster to laion2b; a row
    # dedup kept may still leave at the outlier stage, so the kept one is looked for, not the first taken
    decisions = pq.read_table(vdir / "dedup" / "decisions.parquet").to_pylist()
    trails = [why(vdir, d["uid"]) for d in decisions if d["dup_keep"]][:50]
    stages = ["ingest", "keyword", "download", "validity", "dedup", "outlier"]
    assert all([d["stage"] for d in t][:5] == stages[:5] for t in trails)
    assert all(d["decision"] == "kept" for t in trails for d in t[:5])
    trail = next(t for t in trails if t[-1]["decision"] == "kept")
    assert [d["stage"] for d in trail] == stages and trail[1]["keywords"]
    lost = next(d for d in decisions if d["source"] == "laioncoco" and not d["dup_keep"])
    last = why(vdir, lost["uid"])[-1]
    assert last["reason"] == "url_duplicate" and last["keeper"].startswith("laion2b-")


def test_rerun_of_a_built_version_is_a_no_op(
    sample_world: World, sample_build: Built, prefect_harness: None
) -> None:
    """The same version built again in its own root: the same funnel, not one partition file rewritten.

    The one build allowed on the shared reference root, since what it proves is that it changes nothing
    there (a copy would not do: the outlier decision's fingerprint names its score files by path).
    """
    root, vdir = sample_build.root, sample_build.vdir
    before = {p: p.stat().st_mtime_ns for p in vdir.rglob("*.parquet")}
    assert before
    assert _run(sample_world, root, sample_build.version) == sample_build.rows
    assert {p: p.stat().st_mtime_ns for p in vdir.rglob("*.parquet")} == before


def test_incremental_version_reuses_every_unchanged_partition(
    sample_world: World, sample_build: Built, tmp_path: Path, prefect_harness: None
) -> None:
    """A new version on ``latest`` reuses every unchanged input's partitions (hard links), same funnel."""
    root = linked_copy(sample_build.root, tmp_path / "data")
    vdir = root / "versions" / sample_build.version
    assert _run(sample_world, root, "t2", base_version="latest") == sample_build.rows
    tar = next((vdir / "download").rglob("*.tar"))
    assert (root / "versions" / "t2" / tar.relative_to(vdir)).stat().st_ino == tar.stat().st_ino
    assert (root / "versions" / "t2" / "reports" / "funnel.png").stat().st_size > 1000


def test_changed_outlier_threshold_reruns_only_the_decision(
    sample_world: World, sample_build: Built, tmp_path: Path, prefect_harness: None
) -> None:
    """A changed outlier threshold reuses the scores (same files) and reruns only the decision."""
    root = linked_copy(sample_build.root, tmp_path / "data")
    base, rows = sample_build.version, sample_build.rows
    vdir = root / "versions" / base
    config = with_config(sample_world, "build-test-80.yaml", outlier={"keep_top_vlm": 0.8})
    rows80 = _run(sample_world, root, "t3", config=config, base_version=base)
    score = next((vdir / "outlier_score").glob("*/*.parquet"))
    assert (root / "versions" / "t3" / score.relative_to(vdir)).stat().st_ino == score.stat().st_ino
    total80 = {r["Name"]: r for r in rows80}["Total"]
    pooled = (
        total80["Download Image"] - total80["Invalid Image (Removed)"] - total80["Duplicate Image (Removed)"]
    )
    assert total80["Remain"] == math.ceil(0.8 * pooled) < {r["Name"]: r for r in rows}["Total"]["Remain"]
    diff = diff_versions(root, base, "t3")
    assert diff["removed"]["n"] == {r["Name"]: r for r in rows}["Total"]["Remain"] - total80["Remain"]


def test_a_build_that_cannot_start_leaves_no_version(
    sample_world: World, tmp_path: Path, prefect_harness: None
) -> None:
    root = tmp_path / "data"
    with pytest.raises(ValueError, match=r"base version 'nope' does not exist under .*versions \(complete"):
        _run(sample_world, root, "v1", base_version="nope")
    with pytest.raises(ValueError, match=r"no complete version to build incrementally from under .*lineage"):
        _run(sample_world, root, "v1", base_version="latest")
    cfg = yaml.safe_load(sample_world.config.read_text())
    cfg["sources"][0]["files"] = ["missing-a/*.parquet"]
    cfg["sources"][3]["files"] = ["missing-b.parquet"]
    missing = sample_world.dir / "build-missing.yaml"
    missing.write_text(yaml.safe_dump(cfg))
    with pytest.raises(
        ValueError, match=r"(?s)2 input problem\(s\); nothing was started:.*laion2b.*laion400m"
    ):
        _run(sample_world, root, "v1", config=missing)
    nobody = f"tcp://127.0.0.1:{_free_port()}"  # a deployment run's dask_address is checked too
    with pytest.raises(ValueError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:\d+: "):
        _run(sample_world, root, "v1", address=nobody)
    assert not (root / "versions").exists() and not DataRoot.of(root).lineage_db.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_build_flow_on_existing_dask_cluster(
    sample_world: World, tmp_path: Path, prefect_harness: None
) -> None:
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
        rows = _run(sample_world, tmp_path / "data", "cluster", address=address)
        _check_counts(rows, sample_world.expected)
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

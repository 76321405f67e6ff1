"""End to end as a user runs it, from a checkout-like folder elsewhere (a fresh clone: deployments/ and
prefect.yaml copied, no data/): a Prefect server, work pools ``cpu`` and ``gpu``, ``prefect deploy --all``,
one process worker per pool, then

1. ``build-rs5m/full`` with one flat ``--param config=...`` (the deployment's version template and hand-off
   kept): a test config beside ``deployments/full.yaml`` with its settings and root, the tiny sample
   world's metadata as sources;
2. the hand-off it makes: ``train-georsclip/sample`` trains on that version's shards (steps > 0, in its own
   run folder) and evaluates the model (the demo evaluation data generated on demand);
3. ``build-rs5m/incremental`` (a ``--params`` JSON override) reusing the full version's work.

Starts and stops exactly the processes it starts (their own process groups). Marked e2e and slow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rs5m.config import load_build_config
from rs5m.core.layout import DataRoot
from rs5m.lineage import store as lineage
from rs5m.sample import write_world

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.e2e  # CI runs it: the Prefect path a user takes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _clone(dst: Path) -> Path:
    """A fresh checkout at another path: prefect.yaml and deployments/ copied (their paths resolve there),
    the code folders linked."""
    dst.mkdir(parents=True)
    shutil.copy(ROOT / "prefect.yaml", dst)
    shutil.copytree(ROOT / "deployments", dst / "deployments")
    for code in ("flows", "tasks", "rs5m", "cli"):
        (dst / code).symlink_to(ROOT / code)
    return dst


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, str]]:
    clone = _clone(tmp_path / "clone")
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path}/prefect.db",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "COLUMNS": "400",  # `--watch` lines unwrapped
        # the server streams run logs to `--watch` only with these (docs/operations.md)
        "PREFECT_SERVER_LOGS_STREAM_OUT_ENABLED": "true",
        "PREFECT_SERVER_LOGS_STREAM_PUBLISHING_ENABLED": "true",
        "PWD": str(clone),
        "PYTHONPATH": str(ROOT),
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "CLONE": str(clone),
    }
    env.pop("PREFECT_PROFILES_PATH", None)
    proc = _start(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path / "server.log",
        clone,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                    if json.load(r) is True:
                        break
            except OSError:
                time.sleep(1)
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        else:
            pytest.fail("prefect server did not become healthy in 180 s")
        yield env
    finally:
        _stop(proc)


def _prefect(env: dict[str, str], *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [str(BIN / "prefect"), *args],
        cwd=env["CLONE"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert res.returncode == 0, f"prefect {' '.join(args)}:\n{res.stdout[-4000:]}\n{res.stderr[-3000:]}"
    return res


def _api(env: dict[str, str], path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        f"{env['PREFECT_API_URL']}/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def _test_config(clone: Path, world: Path) -> Path:
    """A test config beside full.yaml: full.yaml's settings and root (../data: the clone's data/), the tiny
    sample world's metadata as sources, its image server, tiny scoring and one in-process Dask worker."""
    full = yaml.safe_load((clone / "deployments" / "full.yaml").read_text())
    sample = load_build_config(world / "build.yaml")  # absolute paths into the world
    keep = {"download", "scoring", "dedup", "sample_server"}
    cfg = {**full, **sample.model_dump(include=keep, mode="json")}
    cfg["sources"] = [s.model_dump(mode="json") for s in sample.sources]
    cfg["dask"] = {"n_workers": 1, "threads_per_worker": 2, "processes": False}
    cfg["package"] = {"max_samples_per_shard": 50}
    path = clone / "deployments" / "full-e2e.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _wait_for_run(env: dict[str, str], flow: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _api(env, "flow_runs/filter", {"flows": {"name": {"any_": [flow]}}})
        if runs and runs[0]["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return runs[0]
        time.sleep(3)
    pytest.fail(f"no finished {flow} run in {timeout:g} s")


def test_full_handoff_and_incremental_from_a_fresh_clone(server: dict[str, str], tmp_path: Path) -> None:
    env, clone = server, Path(server["CLONE"])
    world = tmp_path / "world"
    expected = write_world(world, seed=0, port=_free_port())
    _test_config(clone, world)
    _prefect(env, "work-pool", "create", "cpu", "--type", "process")
    _prefect(env, "work-pool", "create", "gpu", "--type", "process")
    deployed = _prefect(env, "--no-prompt", "deploy", "--all").stdout
    assert "build-rs5m/full" in deployed and "train-georsclip/sample" in deployed
    workers = [
        _start(
            [str(BIN / "prefect"), "worker", "start", "--pool", pool], env, tmp_path / f"{pool}.log", clone
        )
        for pool in ("cpu", "gpu")
    ]
    run = ("deployment", "run", "--watch", "--watch-timeout", "900")
    try:
        full = _prefect(
            env, *run, "build-rs5m/full", "--param", "config=deployments/full-e2e.yaml", timeout=1000
        )
        assert "Completed" in full.stdout and "checking deployments/full-e2e.yaml" in full.stdout
        data = DataRoot.of(clone / "data")  # full.yaml's root: ../data, the clone's data/, not the cwd's
        (version,) = [v for v in data.version_names() if v.startswith("full-")]
        incr = _prefect(
            env,
            *run,
            "build-rs5m/incremental",
            "--params",
            '{"config": "deployments/full-e2e.yaml"}',
            timeout=1000,
        )
        assert "Completed" in incr.stdout
        assert re.search(rf"reused (\d+) of \1 partitions from {version}", incr.stdout), incr.stdout[-3000:]
        train = _wait_for_run(env, "train-georsclip", 900)
    finally:
        for worker in workers:
            _stop(worker)
    with lineage.connect(data.lineage_db, read_only=True) as con:
        rows = {r["Name"]: r for r in lineage.funnel_rows(con, version)}
    assert rows["Total"]["Amount"] == expected["totals"]["amount"]
    assert train["state_type"] == "COMPLETED", (tmp_path / "gpu.log").read_text()[-4000:]
    assert (train["parameters"]["dataset_version"], train["parameters"]["data_root"]) == (
        version,
        str(data.path),
    )
    (model_json,) = data.train_runs_dir.glob(f"{version}-*/final/model.json")
    doc = json.loads(model_json.read_text())
    assert doc["data_version"] == version and doc["steps"] > 0
    assert doc["config"]["data"]["shards"] == str(data.version(version).package_dir("open_clip"))
    assert (model_json.parents[1] / "eval" / "results.csv").is_file()
    artifacts = _api(env, "artifacts/filter", {"artifacts": {"key": {"any_": [f"funnel-{version}"]}}})
    assert artifacts and artifacts[0]["type"] == "table" and "Source" in json.dumps(artifacts[0]["data"])
    shot = os.environ.get("RS5M_FLOW_RUN_SCREENSHOT")
    if shot:  # refresh docs/prefect-flow-run.png: RS5M_FLOW_RUN_SCREENSHOT=docs/prefect-flow-run.png
        api = env["PREFECT_API_URL"]
        _screenshot(api.removesuffix("/api") + f"/runs/flow-run/{artifacts[0]['flow_run_id']}", ROOT / shot)


def _screenshot(url: str, out: Path) -> None:
    chromium = os.environ.get("RS5M_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        pytest.skip(f"no Chromium at {chromium} for the screenshot")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             "--hide-scrollbars"]  # fmt: skip
    cmd = [
        chromium,
        *flags,
        "--window-size=1400,1000",
        "--virtual-time-budget=20000",
        f"--screenshot={out}",
        url,
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    assert out.stat().st_size > 10_000

"""End to end as a user runs it: Prefect server, work pool, `prefect deploy --all`, a process worker,
`prefect deployment run build-rs5m/sample --watch`, then the funnel in DuckDB and the artifact via the API.

Starts and stops exactly the processes it starts (their own process groups). Marked e2e and slow; CI runs it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rs5m.core.layout import DataRoot
from rs5m.lineage import store as lineage
from rs5m.sample import write_world

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, str]]:
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path}/prefect.db",
        "PWD": str(ROOT),
        "NO_ALBUMENTATIONS_UPDATE": "1",
    }
    env.pop("PREFECT_PROFILES_PATH", None)
    proc = _start(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path / "server.log",
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
        [str(BIN / "prefect"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert res.returncode == 0, f"prefect {' '.join(args)}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def test_sample_deployment_runs_on_a_worker(server: dict[str, str], tmp_path: Path) -> None:
    world = tmp_path / "world"
    expected = write_world(world, seed=0, port=_free_port())  # not 18765: tests run side by side
    cfg = yaml.safe_load((world / "build.yaml").read_text())
    cfg["dask"] = {"n_workers": 1, "threads_per_worker": 2, "processes": False}
    (world / "build-e2e.yaml").write_text(yaml.safe_dump(cfg))
    data = tmp_path / "data"
    env = server
    _prefect(env, "work-pool", "create", "cpu", "--type", "process")
    _prefect(env, "work-pool", "create", "gpu", "--type", "process")
    deployed = _prefect(env, "--no-prompt", "deploy", "--all").stdout
    assert "build-rs5m/sample" in deployed and "evaluate-georsclip/sample" in deployed
    worker = _start([str(BIN / "prefect"), "worker", "start", "--pool", "cpu"], env, tmp_path / "worker.log")
    try:
        params = {"params": {"config": str(world / "build-e2e.yaml"), "root": str(data), "version": "e2e"}}
        res = _prefect(
            env,
            "deployment",
            "run",
            "build-rs5m/sample",
            "--params",
            json.dumps(params),
            "--watch",
            "--watch-timeout",
            "600",
            timeout=700,
        )
        assert "Completed" in res.stdout
    finally:
        _stop(worker)
    with lineage.connect(DataRoot.of(data).lineage_db, read_only=True) as con:
        rows = {r["Name"]: r for r in lineage.funnel_rows(con, "e2e")}
    assert rows["Total"]["Amount"] == expected["totals"]["amount"]
    after_keyword = sum(e["funnel"]["after_keyword"] for e in expected["sources"].values())
    assert rows["Total"]["After Keyword Filtering"] == after_keyword
    api = env["PREFECT_API_URL"]
    req = urllib.request.Request(
        f"{api}/artifacts/filter",
        data=b'{"artifacts": {"key": {"any_": ["funnel-e2e"]}}}',
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        artifacts = json.load(r)
    assert artifacts and artifacts[0]["type"] == "table"
    assert "LAION2B" in json.dumps(artifacts[0]["data"])
    shot = os.environ.get("RS5M_FLOW_RUN_SCREENSHOT")
    if shot:  # refresh docs/prefect-flow-run.png: RS5M_FLOW_RUN_SCREENSHOT=docs/prefect-flow-run.png
        _screenshot(api.removesuffix("/api") + f"/runs/flow-run/{artifacts[0]['flow_run_id']}", ROOT / shot)


def _screenshot(url: str, out: Path) -> None:
    chromium = os.environ.get("RS5M_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        pytest.skip(f"no Chromium at {chromium} for the screenshot")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ]
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

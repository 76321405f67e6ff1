"""The Compose file's Dask TLS: credentials from ``rs5m.core.dask_tls`` let a scheduler, a worker and a
client talk over mutual TLS, and a client without them is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rs5m.core.dask_tls import FILES, main, tls_env, write_credentials
from tests.faults._builds import free_port, stop_processes

ROOT = Path(__file__).resolve().parents[2]
CLIENT = """
import sys
from distributed import Client
with Client(sys.argv[1], timeout="20s") as c:
    c.wait_for_workers(1, timeout=60)
    print("sum", c.submit(sum, [1, 2, 3]).result())
"""


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    return {**env, "NO_ALBUMENTATIONS_UPDATE": "1", **extra}


def test_credentials_are_written_once(tmp_path: Path) -> None:
    assert write_credentials(tmp_path, ["localhost"])
    before = {f: (tmp_path / f).read_bytes() for f in FILES}
    assert not write_credentials(tmp_path, ["localhost"])  # idempotent: kept
    assert {f: (tmp_path / f).read_bytes() for f in FILES} == before
    assert main(["--out", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "node-key.pem").read_bytes() != before["node-key.pem"]
    assert (tmp_path / "node-key.pem").stat().st_mode & 0o077 == 0  # the key is private to its owner
    assert b"PRIVATE" not in (tmp_path / "ca.pem").read_bytes()  # the CA key is never written


@pytest.mark.slow
def test_mutual_tls_cluster_refuses_clients_without_credentials(tmp_path: Path) -> None:
    write_credentials(tmp_path / "tls", ["localhost", "127.0.0.1"])
    env = _env(tls_env(tmp_path / "tls"))
    port = free_port()
    address = f"tls://127.0.0.1:{port}"
    py = [sys.executable, "-m"]
    common = ["--dashboard-address", ":0"]
    sched = [*py, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port), *common]
    worker = [*py, "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny", *common]
    procs = [subprocess.Popen(sched, env=env)]
    try:
        procs.append(subprocess.Popen([*worker, "--local-directory", str(tmp_path / "w")], env=env))
        run = [sys.executable, "-c", CLIENT]
        ok = subprocess.run([*run, address], env=env, capture_output=True, text=True, timeout=120)
        assert ok.returncode == 0 and "sum 6" in ok.stdout, ok.stderr[-2000:]
        plain = _env({"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "5s"})
        for addr in (address, f"tcp://127.0.0.1:{port}"):  # no credentials / no TLS at all
            bad = subprocess.run([*run, addr], env=plain, capture_output=True, text=True, timeout=120)
            assert bad.returncode != 0 and "sum 6" not in bad.stdout, addr
    finally:
        stop_processes(procs)


def test_compose_dask_services_use_tls() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    for name in ("dask-scheduler", "dask-worker", "dask-gpu-worker", "prefect-worker-cpu"):
        svc = services[name]
        env = svc["environment"]
        assert env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] == "True", name
        assert env["RS5M_DASK_ADDRESS"].startswith("tls://"), name
        assert svc["depends_on"]["dask-certs"]["condition"] == "service_completed_successfully", name
        assert "tcp://" not in str(svc.get("command", "")), name
    assert "8786" not in str(services["dask-scheduler"].get("ports", []))  # not published to the host

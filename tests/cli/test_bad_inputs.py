"""Every bad input of ``tests/cli/bad_inputs.py`` ends ``rs5m`` with its one line and exit status, and
``docs/bad-inputs.md`` is that table (issue #17 items 11 and 14)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import main
from tasks import scheduler
from tests.cli.bad_inputs import CASES, Case, make_env, match, render

# Prefect's own log lines, and the second line of its notice on starting a temporary API server
PREFECT_LINE = re.compile(
    r"^\d\d:\d\d:\d\d\.\d{3} \| [A-Z]+ *\| ((Flow|Task) run '[^']+'|prefect) - "
    r"|^See https://www\.prefect\.io/docs/\S+ for more information on running a dedicated Prefect server\.$"
)
DOC = Path(__file__).resolve().parents[2] / "docs" / "bad-inputs.md"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad-inputs")
    make_env(folder)
    return folder


@pytest.fixture(scope="module")
def readonly(env: Path) -> Iterator[bool]:
    """``env/readonly``: a read-only folder (a read-only tmpfs as root, mode 0555 otherwise)."""
    path = env / "readonly"
    path.mkdir(exist_ok=True)
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield True
        path.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)]
    done = subprocess.run(mount, capture_output=True, check=False)
    yield done.returncode == 0
    if done.returncode == 0:
        subprocess.run(["umount", str(path)], check=False)


@pytest.fixture(scope="module")
def ports() -> Iterator[dict[str, int]]:
    """A closed port and a port that accepts connections but never answers."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(16)
    yield {"port": port, "busy": busy.getsockname()[1]}
    busy.close()


def _fill(text: str, ports: dict[str, int]) -> str:
    return text.replace("{port}", str(ports["port"])).replace("{busy}", str(ports["busy"]))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line(
    case: Case,
    env: Path,
    readonly: bool,
    ports: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if "readonly" in case.needs and not readonly:
        pytest.skip("no read-only folder here (not root and cannot mount)")
    monkeypatch.chdir(env)
    monkeypatch.setattr(scheduler, "CONNECT_TIMEOUT_S", 2.0)
    try:
        status = main([_fill(a, ports) for a in case.argv])
    except SystemExit as exc:  # argparse
        status = exc.code
    err = capsys.readouterr().err
    # Prefect's lines may come first (see the page's header); the cause is the one other line, the last
    printed = err.strip("\n").splitlines()
    lines = [line for line in printed if not PREFECT_LINE.match(line)]
    assert "Traceback" not in err
    assert case.in_flow or "Flow run '" not in err, err  # checked before the flow starts
    assert len(lines) == 1 and printed[-1] == lines[0], err
    expected = _fill(case.shows, ports)
    assert match(expected, lines[0]), f"\n got: {lines[0]}\nwant: {expected}"
    assert status == case.status, lines[0]


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 40


def test_the_doc_is_the_table() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/bad-inputs.md is out of date: python -m tests.cli.bad_inputs > docs/bad-inputs.md"
    )


@pytest.mark.parametrize(
    ("pattern", "line", "ok"),
    [
        ("a <*> c", "a b c", True),
        ("a <*> c", "a  c", True),
        ("a<*>b<*>c", "abc", True),
        ("a<*>b<*>c", "ac", False),
        ("exact", "exact", True),
        ("exact", "exact!", False),
        ("<*>x", "yyx", True),
    ],
)
def test_match(pattern: str, line: str, ok: bool) -> None:
    assert match(pattern, line) is ok

"""Ctrl-C handling of a command (``cli.interrupt``): the first SIGINT raises ``KeyboardInterrupt`` and
silences the console, a second one (or the grace period running out) exits at once with one line and
kills what the process started (issue #17 item 9). The whole build is in ``test_build_interrupt.py``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cli import logs
from cli.interrupt import Interrupts
from tests._process import gone

REPO = Path(__file__).resolve().parents[2]

# A command that ignores the first Ctrl-C's KeyboardInterrupt and goes on "cleaning up" for a minute,
# with a child process of its own; prints its state on stdout.
SCRIPT = textwrap.dedent(
    """
    import subprocess, sys, time
    from pathlib import Path
    from cli.interrupt import Interrupts, kill_children
    flag = Path(sys.argv[1])
    # the child ignores SIGINT, so only kill_children ends it; it says so once it does, as a Ctrl-C
    # landing in its start-up would print a fatal error (or end it) on the shared stderr
    ignore = "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN)"
    code = ignore + "; print(1, flush=True); import time; time.sleep(120)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    child.stdout.readline()
    print("child", child.pid, flush=True)
    on_hard_exit = lambda: (flag.write_text("x"), kill_children())
    with Interrupts("cut off", on_hard_exit=on_hard_exit, grace_s=float(sys.argv[2])):
        try:  # "ready" inside the try: the first Ctrl-C may land while print returns
            print("ready", flush=True)
            time.sleep(120)
        except KeyboardInterrupt:
            print("first", flush=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # a slow teardown (no second KeyboardInterrupt comes)
            time.sleep(0.05)
    print("returned", flush=True)
    """
)


def _start(tmp_path: Path, grace_s: float) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "flag"), str(grace_s)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    child = int(proc.stdout.readline().split()[1])
    assert proc.stdout.readline().strip() == "ready"
    return proc, child


def test_a_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    proc, child = _start(tmp_path, grace_s=60)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole foreground group
    assert proc.stdout is not None and proc.stdout.readline().strip() == "first"
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert time.monotonic() - start < 3
    assert proc.returncode == 130 and err == "cut off\n" and "returned" not in out
    assert (tmp_path / "flag").exists() and gone(child, 5)


def test_a_stop_that_outlasts_the_grace_period_is_cut_off(tmp_path: Path) -> None:
    proc, child = _start(tmp_path, grace_s=1.5)
    start = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert 1.4 < time.monotonic() - start < 10
    assert proc.returncode == 130 and err == "cut off\n" and out.split() == ["first"]
    assert gone(child, 5)


def test_the_first_ctrl_c_raises_in_the_main_thread_and_silences() -> None:
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs as a background job
    with Interrupts("cut off", grace_s=60) as interrupts:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        assert interrupts.interrupted and logs.silenced()
    assert not logs.silenced()  # the process goes on (a test calling main): its console too
    assert signal.getsignal(signal.SIGINT) is before

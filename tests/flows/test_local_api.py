"""The local Prefect API server of a run lives in a session of its own (a terminal's Ctrl-C does not
reach it), and dies with the process that started it, however that one dies (issue #17 item 9)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests._process import gone

REPO = Path(__file__).resolve().parents[2]

# Starts the local API, sends SIGINT to its own process group as a terminal would, checks the server
# still answers, then dies without any cleanup (os._exit).
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time, urllib.request
    import psutil
    from flows.local_api import local_api
    with local_api() as url:
        [server] = [p for p in psutil.Process().children(recursive=True) if "uvicorn" in p.cmdline()]
        print("server", server.pid, os.getsid(server.pid), os.getsid(0), flush=True)
        try:
            os.killpg(0, signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            pass
        time.sleep(0.5)
        with urllib.request.urlopen(url + "/health", timeout=10) as resp:
            print("health", resp.status, flush=True)
        os._exit(3)
    """
)


def test_the_server_outlives_a_ctrl_c_but_not_its_starter(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PYTHONPATH": str(REPO), "PREFECT_HOME": str(tmp_path / "prefect")}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
        start_new_session=True,
    )  # fmt: skip
    lines = proc.stdout.splitlines()
    assert proc.returncode == 3, proc.stderr[-3000:]
    _, pid, server_sid, own_sid = lines[0].split()
    assert server_sid != own_sid  # its own session: the terminal's SIGINT to the foreground group misses it
    assert lines[1] == "health 200"  # still up after the Ctrl-C
    assert gone(int(pid), 10)  # PR_SET_PDEATHSIG: gone with its starter, though nothing stopped it


def test_an_api_in_the_active_settings_is_used_and_left_running(prefect_harness: None) -> None:
    """Under a Prefect test harness (the API is in the settings, not the environment) ``local_api``
    neither starts a second server nor stops the harness's one on exit (it did: later tests of the
    session then failed with 'connection refused')."""
    import httpx
    from prefect.settings import get_current_settings

    from flows.local_api import local_api

    url = get_current_settings().api.url
    with local_api() as used:
        assert used == url
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200

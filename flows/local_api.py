"""A Prefect API for local runs that every Dask worker process shares.

Without ``PREFECT_API_URL``, Prefect starts an ephemeral API server in each process that needs one,
so every Dask worker process of a LocalCluster would start its own server (slow) and record its task
runs in a database the user never sees. ``local_api`` starts one server for the run and exports its
URL before the cluster starts, so worker processes inherit it.

The server runs in a session (process group) of its own: a Ctrl-C at the terminal reaches the
foreground process group only, so the server stays up while the build records how it ended, and is
stopped here afterwards. In the build's group it died with the first Ctrl-C, and every client call of
the shutdown then retried against a dead server for minutes. So that nothing outlives the build, the
server gets SIGTERM when the thread that started it dies, however it dies (``PR_SET_PDEATHSIG``; start
it from the main thread), and ``kill_servers`` kills it at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import prefect
from prefect.logging.handlers import APILogWorker
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, get_current_settings

_SERVERS: list[subprocess.Popen[Any]] = []  # started here and not known to be stopped (kill_servers)
_EXEC_WITH_PDEATHSIG = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG, kept across exec
except AttributeError:  # not Linux
    pass
if os.getppid() != int(sys.argv[1]):  # the starter died before prctl
    sys.exit(0)
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


class OwnSessionServer(SubprocessASGIServer):
    """Prefect's ephemeral API server subprocess, in a session of its own, stopped when its starter dies.

    It is also the instance Prefect's own client finds (``SubprocessASGIServer()`` is one instance per
    port, ``None`` for any), so Prefect reuses it instead of starting a second server in this process.
    """

    def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
        # prefect 3.x SubprocessASGIServer._run_uvicorn_command's command, behind the PDEATHSIG exec,
        # with start_new_session.
        server_env = {
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        settings = get_current_settings().to_environment_variables(exclude_unset=True)
        proc = subprocess.Popen(
            args=[
                sys.executable, "-c", _EXEC_WITH_PDEATHSIG, str(os.getpid()),
                "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent),
                "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
                "--port", str(self.port), "--log-level", "error", "--lifespan", "on",
            ],
            env={**os.environ, **server_env, **settings},
            start_new_session=True,
        )  # fmt: skip
        _SERVERS.append(proc)
        return proc


def kill_servers() -> None:
    """SIGKILL every API server started here that still runs (no time left for a clean stop)."""
    for proc in _SERVERS:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@contextmanager
def local_api() -> Iterator[str | None]:
    """Yield the API URL in use: the configured one, or one started here for the duration.

    "Configured" includes Prefect's active settings (a profile, a test harness), not only the
    environment: an API someone else runs is used, never started again or stopped here.
    """
    configured = os.environ.get("PREFECT_API_URL") or get_current_settings().api.url
    if configured:
        yield configured
        return
    stale = SubprocessASGIServer._instances.get(None)
    if stale is not None and not isinstance(stale, OwnSessionServer) and not stale.running:
        del SubprocessASGIServer._instances[None]
    server = OwnSessionServer()
    try:
        server.start(timeout=PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    except BaseException:  # e.g. a Ctrl-C while it starts: not left running in its own session
        server.stop()
        raise
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        yield server.api_url
    finally:
        APILogWorker.drain_all(timeout=10)  # send buffered run logs while the server is still up
        del os.environ["PREFECT_API_URL"]
        server.stop()
        _SERVERS[:] = [p for p in _SERVERS if p.poll() is None]

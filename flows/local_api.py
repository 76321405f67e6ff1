"""A Prefect API for local runs that every Dask worker process shares.

Without ``PREFECT_API_URL``, Prefect starts an ephemeral API server in each process that needs one,
so every Dask worker process of a LocalCluster would start its own server (slow) and record its task
runs in a database the user never sees. ``local_api`` starts one server for the run and exports its
URL before the cluster starts, so worker processes inherit it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.logging.handlers import APILogWorker
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS


@contextmanager
def local_api() -> Iterator[str | None]:
    """Yield the API URL in use: the configured one, or one started here for the duration."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    server = SubprocessASGIServer()
    server.start(timeout=PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        yield server.api_url
    finally:
        APILogWorker.drain_all(timeout=10)  # send buffered run logs while the server is still up
        del os.environ["PREFECT_API_URL"]
        server.stop()

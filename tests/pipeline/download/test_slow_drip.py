"""A slow-drip server cannot hold a download thread past ``total_timeout``.

The drip server on 127.0.0.1 sends one byte every ``DRIP_S`` seconds, far below the per-read
``timeout``, so no single read ever times out; a complete answer would take ``PLANNED_S``. Before the
fix ``total_timeout`` was checked only between 64 KiB reads, so these fetches ran for the whole drip.
The fetch must now end as ``download_timeout`` within about ``total_timeout + timeout``, and the drip
server must see the client hang up long before its answer was complete.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from rs5m.config import DownloadConfig
from rs5m.pipeline.download.fetch import GuardedFetcher

from .conftest import make_jpeg

DRIP_S = 0.05
PLANNED_S = 120.0  # how long a full answer would take at DRIP_S per byte
TOTAL_S, READ_S = 1.0, 3.0  # total_timeout < timeout: only the total limit can end these fetches
SLACK_S = 10.0  # a loaded 2-core machine: the bound is about total + timeout, the old code took PLANNED_S
N_BYTES = int(PLANNED_S / DRIP_S)
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n"
# what each mode sends before dripping, and what it drips
MODES = {
    "body": (HEAD + f"Content-Length: {N_BYTES}\r\n\r\n".encode(), b"x"),
    "body_without_length": (HEAD + b"Connection: close\r\n\r\n", b"x"),  # EOF would end a short body
    "headers": (b"HTTP/1.1 200 OK\r\nX-Drip: ", b"a"),
    "status_line": (b"", b"HTTP/1.1 200 OK\r\n"[:1]),  # the status line's first byte, forever
}


@dataclass
class Drip:
    """One dripped answer: bytes sent and how the server's side ended."""

    sent: int = 0
    hung_up: bool = False  # the client closed or reset the connection mid-drip
    done: threading.Event = field(default_factory=threading.Event)


class DripServer:
    """Accepts connections on 127.0.0.1 and answers each in the mode named by the request path."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.drips: list[Drip] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            drip = Drip()
            self.drips.append(drip)
            threading.Thread(target=self._answer, args=(conn, drip), daemon=True).start()

    def _answer(self, conn: socket.socket, drip: Drip) -> None:
        with conn:
            try:
                request = conn.recv(4096).decode("latin-1")
                mode = request.split(" ")[1].strip("/") if " " in request else ""
                if mode == "fast":
                    body = make_jpeg(5)
                    conn.sendall(HEAD + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                    return
                head, unit = MODES[mode]
                conn.sendall(head)
                for _ in range(N_BYTES):
                    if self.stop.wait(DRIP_S):
                        return
                    conn.sendall(unit)
                    drip.sent += 1
            except OSError:  # BrokenPipe / ConnectionReset: the client gave up
                drip.hung_up = True
            finally:
                drip.done.set()

    def url(self, path: str) -> str:
        """The URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}/{path}"

    def close(self) -> None:
        """Stop accepting and end every drip."""
        self.stop.set()
        self.sock.close()


@pytest.fixture()
def drip() -> Iterator[DripServer]:
    server = DripServer()
    yield server
    server.close()


def _fetcher(**cfg: float) -> GuardedFetcher:
    settings = dict(timeout=READ_S, total_timeout=TOTAL_S, retry_backoff_s=0.0) | cfg
    return GuardedFetcher(DownloadConfig(allow_hosts=["127.0.0.1"], **settings))


@pytest.mark.parametrize("mode", sorted(MODES))
def test_slow_drip_ends_at_total_timeout(drip: DripServer, mode: str) -> None:
    t0 = time.monotonic()
    _, stream, error = _fetcher()((0, drip.url(mode)), retries=0, user_agent_token=None, directives=None)
    elapsed = time.monotonic() - t0
    assert stream is None
    assert error == f"download_timeout: not done within {TOTAL_S}s", error
    assert TOTAL_S * 0.9 <= elapsed < TOTAL_S + READ_S + SLACK_S, elapsed
    (server_side,) = drip.drips
    assert server_side.done.wait(30), "the drip server never noticed the client leaving"
    assert server_side.hung_up and 0 < server_side.sent < N_BYTES  # it really dripped, and was cut off


def test_each_retry_gets_its_own_deadline(drip: DripServer) -> None:
    t0 = time.monotonic()
    _, stream, error = _fetcher()((0, drip.url("body")), retries=1, user_agent_token=None, directives=None)
    elapsed = time.monotonic() - t0
    assert stream is None and error.startswith("download_timeout: ")
    assert len(drip.drips) == 2  # download_timeout is transient: retried once
    assert 2 * TOTAL_S * 0.9 <= elapsed < 2 * (TOTAL_S + READ_S) + SLACK_S, elapsed


def test_fast_answers_are_untouched_and_leave_no_watchdog(drip: DripServer) -> None:
    fetcher = _fetcher(total_timeout=30.0)
    for i in range(20):
        _, stream, error = fetcher((i, drip.url("fast")), retries=0, user_agent_token=None, directives=None)
        assert error is None and stream is not None and stream.getvalue() == make_jpeg(5)
    deadline = time.monotonic() + 10
    while any(t.name == "rs5m-fetch-deadline" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "a fetch watchdog thread outlived its fetch"
        time.sleep(0.01)

"""A threaded HTTP server on 127.0.0.1 with the routes the download tests need, and request counters."""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

SLOW_S = 3.0


def make_jpeg(n: int) -> bytes:
    """A small JPEG that differs per ``n``."""
    buf = io.BytesIO()
    Image.new("RGB", (40 + n % 7, 30), (n * 37 % 256, n * 11 % 256, 90)).save(buf, "JPEG")
    return buf.getvalue()


class _Handler(BaseHTTPRequestHandler):
    server: ImageServer

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for name, value in {"Content-Type": "image/jpeg", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        srv = self.server
        path = self.path.split("?")[0]
        with srv.lock:
            srv.counts[path] += 1
        try:
            self._route(path)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _route(self, path: str) -> None:
        srv = self.server
        first = path.rsplit("/", 1)[-1]
        if path.startswith("/img/"):
            self._send(200, make_jpeg(int(first.split(".")[0])))
        elif path == "/404":
            self._send(404, b"no")
        elif path == "/slow":
            time.sleep(SLOW_S)
            self._send(200, make_jpeg(1))
        elif path.startswith("/flaky/"):
            with srv.lock:
                seen = path in srv.flaky_seen
                srv.flaky_seen.add(path)
            self._send(200, make_jpeg(2)) if seen else self._send(500, b"oops")
        elif path == "/corrupt":
            self._send(200, b"this is not an image at all")
        elif path.startswith("/redirect/"):
            targets = {
                "private": "http://10.0.0.1/a.jpg",
                "metadata": "http://169.254.169.254/latest/meta-data/",
            }
            self._send(302, headers={"Location": targets.get(first, f"/img/{first}.jpg")})
        elif path.startswith("/optout/"):
            self._send(200, make_jpeg(3), {"X-Robots-Tag": first.replace("_", " ")})
        elif path.startswith("/busy/"):
            self._busy()
        else:
            self._send(404)

    def _busy(self) -> None:
        # Counted as in flight only until just before the reply, so a client that starts its next
        # request after reading this reply is never seen overlapping with it.
        srv = self.server
        with srv.lock:
            srv.inflight += 1
            srv.max_inflight = max(srv.max_inflight, srv.inflight)
        time.sleep(0.3)
        with srv.lock:
            srv.inflight -= 1
        self._send(200, make_jpeg(4))


class ImageServer(ThreadingHTTPServer):
    """Serves the test routes; ``counts`` counts requests per path."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.flaky_seen: set[str] = set()
        self.inflight = 0
        self.max_inflight = 0

    def url(self, path: str) -> str:
        """Full URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.server_port}{path}"

    @property
    def port(self) -> int:
        """The bound port."""
        return self.server_port

    def total(self) -> int:
        """Requests served so far."""
        with self.lock:
            return sum(self.counts.values())


@pytest.fixture(scope="package")
def server() -> Iterator[ImageServer]:
    """One image server on 127.0.0.1 for the download tests."""
    srv = ImageServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Hosts passed to ``socket.create_connection`` during the test (connection attempts)."""
    import socket

    seen: list[str] = []
    original = socket.create_connection

    def recording(address, *args, **kwargs):
        seen.append(str(address[0]))
        return original(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", recording)
    return seen

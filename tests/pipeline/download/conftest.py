"""A threaded HTTP server on 127.0.0.1 with the routes the download tests need, request counters, and a
fake ``getaddrinfo`` (``FakeDNS``) for names that must never reach a real resolver."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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
        elif path.startswith("/status/"):
            self._send(int(first), b"status")
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
                "internal": "http://internal.example/a.jpg",  # a name FakeDNS maps to a private address
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


HANG = "hang"  # FakeDNS answer: block until ``release`` is set, then answer 127.0.0.1


class FakeDNS:
    """A ``getaddrinfo``-like lookup over ``answers``: host -> list of IPs, a ``gaierror`` code, or ``HANG``.

    Unknown names are NXDOMAIN (``EAI_NONAME``). ``calls`` counts lookups per host; ``max_active`` is the
    most lookups seen running at once; ``delay`` seconds are spent in every lookup.
    """

    def __init__(self, answers: dict[str, Any], delay: float = 0.0) -> None:
        self.answers, self.delay = answers, delay
        self.calls: Counter[str] = Counter()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.active = self.max_active = 0

    def __call__(self, host: str, port: int | None, *args: Any, **kwargs: Any) -> list[tuple]:
        with self.lock:
            self.calls[host] += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            answer = self.answers.get(host, socket.EAI_NONAME)
            if answer == HANG:
                self.release.wait(60)
                answer = ["127.0.0.1"]
            time.sleep(self.delay)
            if isinstance(answer, int):
                raise socket.gaierror(answer, f"fake {answer}")
            return [
                (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 0))
                for ip in answer
            ]
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture()
def fake_dns() -> Iterator[FakeDNS]:
    """A ``FakeDNS`` with no names; hung lookups are released when the test ends."""
    dns = FakeDNS({})
    yield dns
    dns.release.set()

"""A file server on 127.0.0.1 with Range/If-Range support and scriptable faults, for download tests.

``FileServer.files`` maps URL paths to bytes. Faults: ``cut_after[path] = n`` makes the next GET of
``path`` announce the full length but close the connection after ``n`` body bytes; ``stall_after[path]
= n`` sends ``n`` bytes and then hangs until ``release`` is set (a client killed mid-transfer);
``serve_once[path]`` replaces the body of the next GET (a corrupt copy). ``bytes_served`` and
``requests`` record traffic.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class RangeHandler(BaseHTTPRequestHandler):
    """Serves ``server.owner.files`` with single byte ranges; subclasses add routes via ``route``."""

    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # keep pytest output clean
        return

    @property
    def owner(self) -> FileServer:
        return self.server.owner  # type: ignore[attr-defined]

    def do_HEAD(self) -> None:  # noqa: N802 (http.server naming)
        self._dispatch(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch(head=False)

    def _dispatch(self, head: bool) -> None:
        path = self.path.split("?", 1)[0]
        self.owner.requests.append((self.command, self.path, self.headers.get("Range")))
        if not self.route(path, head):
            body = self.owner.files.get(path)
            if body is None:
                self.send_error_json(404, {"error": "not found"})
                return
            self.send_bytes(path, body, head, {})

    def route(self, path: str, head: bool) -> bool:
        """Handle ``path`` here and return True, or return False for a plain file lookup."""
        return False

    def send_error_json(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        import json

        data = json.dumps(payload).encode()
        self.send_response(code)
        for key, val in (headers or {}).items():
            self.send_header(key, val)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_bytes(self, key: str, body: bytes, head: bool, extra: dict[str, str]) -> None:
        """Send ``body`` honouring ``Range``/``If-Range``; apply and consume scripted faults for ``key``."""
        if not head and key in self.owner.serve_once:
            body = self.owner.serve_once.pop(key)
        etag = extra.pop("ETag", None) or f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        start, status = 0, 200
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if_range = self.headers.get("If-Range")
        if match and (if_range is None or if_range == etag):
            start, status = int(match.group(1)), 206
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        self.send_response(status)
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body) - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        payload = body[start:]
        stall = self.owner.stall_after.pop(key, None)
        if stall is not None:
            self.wfile.write(payload[:stall])
            self.wfile.flush()
            self.owner.bytes_served[key] += stall
            self.owner.release.wait(60)
            self.close_connection = True
            return
        cut = self.owner.cut_after.pop(key, None)
        if cut is not None:
            payload = payload[:cut]
            self.close_connection = True
        self.wfile.write(payload)
        self.wfile.flush()
        self.owner.bytes_served[key] += len(payload)
        if cut is not None:
            self.connection.shutdown(2)


class FileServer:
    """A threaded server on 127.0.0.1 (random port) owned by a test; ``url(path)`` builds addresses."""

    handler: type[RangeHandler] = RangeHandler

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}
        self.serve_once: dict[str, bytes] = {}
        self.stall_after: dict[str, int] = {}
        self.release = threading.Event()
        self.bytes_served: Counter[str] = Counter()
        self.requests: list[tuple[str, str, str | None]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self._server.daemon_threads = True
        self._server.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return self.base + path

    def start(self) -> FileServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down (releasing stalled transfers first)."""
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def serving(server: FileServer) -> Iterator[FileServer]:
    """Run ``server`` for the duration of the block."""
    server.start()
    try:
        yield server
    finally:
        server.stop()

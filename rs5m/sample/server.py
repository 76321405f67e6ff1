"""A loopback-only HTTP server for the sample world's images.

Contract:
- ``serve_images(root, host, port)`` serves the files under ``root`` (URL path = file path relative to
  ``root``; query strings ignored) from a background thread and yields a ``ServedAddress``: a
  ``(host, port)`` tuple with extra attributes ``base_url`` and ``request_log`` (a ``Counter`` of
  requests per URL path, successes and failures alike). The server stops when the block exits.
- Only loopback hosts (127.0.0.0/8, ::1, "localhost") are accepted; anything else raises ``ValueError``.
- Directories, paths outside ``root`` and missing files answer 404; there are no directory listings.
- ``faults`` maps a URL path to HTTP status codes answered on its first requests, in order (e.g.
  ``{"/laion2b/00001.jpg": [503, 503]}`` fails twice, then serves the file): for retry tests.
- ``routes`` maps a URL path to a planted behaviour, on every request (after any pending fault):
  ``{"sleep": s}`` waits ``min(s, MAX_SLEEP_S)`` seconds, then answers as for a plain path (the file or
  404) - a client with a shorter timeout sees a timeout; ``{"redirect": url}`` answers 302 to ``url``
  (the sample world points these at private addresses the download guard must refuse). Routes are read
  from ``root/ROUTES_FILE`` when it exists (``write_world`` writes it), then updated by the argument;
  ``ROUTES_FILE`` itself is never served. Sleeps end early when the server stops, so the block exits
  promptly even with a client mid-sleep.
- ``outage`` plants a server outage that ends by itself: ``{"mode": "reset" | "stall", "requests": N}``
  breaks the first ``N`` requests the server receives (any path, before planted faults and routes,
  which it does not consume), then the server recovers. ``reset`` reads the request and aborts the
  connection with a TCP RST (``SO_LINGER`` 0, then close): the client sees ``ConnectionResetError``.
  ``stall`` reads the request and answers nothing for ``"stall_s"`` seconds (default ``MAX_SLEEP_S``,
  ended early when the server stops), then closes the connection: a client with a shorter timeout
  sees a timeout. Broken requests are counted in ``request_log`` like any other and, per path, in
  ``ServedAddress.outage_log``, so a test can assert the outage really happened.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

ROUTES_FILE = "_routes.json"
MAX_SLEEP_S = 60.0


class ServedAddress(tuple):  # noqa: SLOT001 - a (host, port) pair that also carries the request log
    """``(host, port)`` of a running image server, plus ``base_url``, ``request_log`` and ``outage_log``."""

    base_url: str
    request_log: Counter[str]
    outage_log: Counter[str]

    def __new__(
        cls, host: str, port: int, request_log: Counter[str], outage_log: Counter[str] | None = None
    ) -> ServedAddress:
        obj = super().__new__(cls, (host, port))
        obj.base_url = f"http://{host}:{port}"
        obj.request_log = request_log
        obj.outage_log = Counter() if outage_log is None else outage_log
        return obj


class _Outage:
    """The planted outage's state: how many more requests it breaks, and how."""

    def __init__(self, spec: dict[str, Any] | None, log: Counter[str]) -> None:
        spec = dict(spec or {"mode": "reset", "requests": 0})
        mode, left = spec.pop("mode", None), spec.pop("requests", None)
        if mode not in ("reset", "stall") or not isinstance(left, int) or left < 0 or set(spec) - {"stall_s"}:
            raise ValueError(
                "outage must be {'mode': 'reset' | 'stall', 'requests': N >= 0[, 'stall_s': s]}, "
                f"not mode={mode!r} requests={left!r} {spec}"
            )
        self.mode: Literal["reset", "stall"] = mode
        self.left = left
        self.stall_s = min(float(spec.get("stall_s", MAX_SLEEP_S)), MAX_SLEEP_S)
        self.log = log

    def take(self, path: str) -> str | None:
        """The mode to break this request with, or ``None`` once the outage is over (call under a lock)."""
        if self.left <= 0:
            return None
        self.left -= 1
        self.log[path] += 1
        return self.mode


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or the name "localhost"."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024  # the default backlog of 5 drops bursts of downloads (retried only after 1 s)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(SimpleHTTPRequestHandler):
    """Static files only; counts every request; plays planted fault statuses first."""

    def __init__(
        self,
        *args: Any,
        log: Counter[str],
        lock: threading.Lock,
        faults: dict[str, list[int]],
        routes: dict[str, dict[str, Any]],
        stop: threading.Event,
        outage: _Outage,
        **kwargs: Any,
    ) -> None:
        self._log, self._lock, self._faults = log, lock, faults
        self._routes, self._stop, self._outage = routes, stop, outage
        super().__init__(*args, **kwargs)

    def _count(self) -> tuple[str, str | None, int | None]:
        path = unquote(urlsplit(self.path).path)
        with self._lock:
            self._log[path] += 1
            broken = self._outage.take(path)
            if broken is not None:
                return path, broken, None
            pending = self._faults.get(path)
            return path, None, (pending.pop(0) if pending else None)

    def _break(self, mode: str) -> None:
        self.close_connection = True
        if mode == "stall":
            self._stop.wait(self._outage.stall_s)
            return  # closed without a byte of answer
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # its reference would keep the socket open past close()
        self.connection.close()  # linger 0: the kernel answers with RST, not FIN

    def _serve(self, head: bool) -> None:
        try:
            self._serve_inner(head)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. timed out mid-sleep)
            pass

    def _serve_inner(self, head: bool) -> None:
        path, broken, status = self._count()
        if broken is not None:
            self._break(broken)
            return
        if status is not None:
            self.send_error(status)
            return
        route = self._routes.get(path, {})
        if "redirect" in route:
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", str(route["redirect"]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if "sleep" in route:
            self._stop.wait(min(float(route["sleep"]), MAX_SLEEP_S))
        fs_path = Path(self.translate_path(self.path))
        if not fs_path.is_file() or path.lstrip("/") == ROUTES_FILE:
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return
        f = self.send_head()
        if f is not None:
            try:
                if not head:
                    self.copyfile(f, self.wfile)
            finally:
                f.close()

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request stderr logs
        return


@contextmanager
def serve_images(
    root: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    faults: dict[str, list[int]] | None = None,
    routes: dict[str, dict[str, Any]] | None = None,
    outage: dict[str, Any] | None = None,
) -> Iterator[ServedAddress]:
    """Serve ``root`` on ``host:port`` (0 = any free port) while the block runs (see module contract)."""
    if not is_loopback(host):
        raise ValueError(f"the sample image server binds loopback only, not {host!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image root {root} is not a folder")
    log: Counter[str] = Counter()
    broken = _Outage(outage, Counter())
    stop = threading.Event()
    table: dict[str, dict[str, Any]] = {}
    if (root / ROUTES_FILE).is_file():
        table.update(json.loads((root / ROUTES_FILE).read_text(encoding="utf-8")))
    table.update(routes or {})
    handler = partial(
        _Handler,
        directory=str(root),
        log=log,
        lock=threading.Lock(),
        faults={k: list(v) for k, v in (faults or {}).items()},
        routes=table,
        stop=stop,
        outage=broken,
    )
    server = (_Server6 if ":" in host else _Server)((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, name=f"rs5m-sample-images:{port}", daemon=True)
    thread.start()
    try:
        bound_port = server.server_address[1]
        yield ServedAddress(host, bound_port, log, broken.log)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

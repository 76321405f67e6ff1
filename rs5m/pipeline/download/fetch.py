"""The guarded, per-host-polite fetch function that img2dataset's downloader calls for every URL.

How it hooks img2dataset 1.47: ``Downloader.download_shard`` fetches each row through the module
attribute ``img2dataset.downloader.download_image_with_retry(row, timeout=self.timeout, ...)``.
``install_hook`` replaces that attribute once per process with a dispatcher: when the ``timeout`` it
receives is a ``GuardedTimeout`` (a float that carries a ``GuardedFetcher``), the row is fetched by
that fetcher; any other call goes to img2dataset's own function unchanged. So several partitions
with different configs can download in one process at once, and plain img2dataset use in the same
process is untouched. The hook refuses to install if img2dataset's signature changed.

Fetch contract (``GuardedFetcher.__call__``): returns img2dataset's ``(key, BytesIO | None, error)``.
``error`` is ``"<reason>: <detail>"`` with a reason from ``FETCH_REASONS``; only transient reasons
(timeouts, HTTP 408/429/5xx, connection resets) are retried, with exponential back-off. At most
``per_host_concurrency`` requests run against one host at a time (a semaphore per host name).

Time limits: ``timeout`` bounds each socket operation (connect, every read); ``total_timeout`` bounds
one attempt as a whole - connect, TLS, status line, headers and body - however the server paces its
bytes. A watchdog (``Deadline``) shuts the attempt's sockets down when its time is up, so a server
that drips one byte per read, each within ``timeout``, cannot hold a download thread much past
``total_timeout``; such an attempt fails with ``download_timeout`` (transient, so retried).
"""

from __future__ import annotations

import http.client
import inspect
import io
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol
from urllib.error import HTTPError, URLError

from rs5m.core.schema import Reason
from rs5m.pipeline.download.netguard import (
    Refusal,
    RefusedError,
    build_guarded_opener,
    normalise_allowlist,
    split_url,
)

DOWNLOAD_FAILED = Reason.DOWNLOAD_FAILED.value
DOWNLOAD_TIMEOUT = Reason.DOWNLOAD_TIMEOUT.value
DOWNLOAD_TRANSIENT = Reason.DOWNLOAD_TRANSIENT.value
DISALLOWED_BY_HEADER = Reason.DISALLOWED_BY_HEADER.value
RESPONSE_TOO_LARGE = Reason.RESPONSE_TOO_LARGE.value
RESPONSE_TOO_SMALL = Reason.RESPONSE_TOO_SMALL.value
TRANSIENT_REASONS = frozenset({DOWNLOAD_TIMEOUT, DOWNLOAD_TRANSIENT})
FETCH_REASONS = frozenset(
    {
        DOWNLOAD_FAILED,
        DOWNLOAD_TIMEOUT,
        DOWNLOAD_TRANSIENT,
        DISALLOWED_BY_HEADER,
        RESPONSE_TOO_LARGE,
        RESPONSE_TOO_SMALL,
        "refused_url",
        "refused_host",
        "redirect_refused",
    }
)
_CHUNK = 1 << 16
_HOOK_PARAMS = ["row", "timeout", "retries", "user_agent_token", "disallowed_header_directives"]
_hook_lock = threading.Lock()


class FetchSettings(Protocol):
    """The ``DownloadConfig`` fields the fetcher reads."""

    timeout: float
    total_timeout: float
    retry_backoff_s: float
    per_host_concurrency: int
    allow_hosts: list[str]
    max_redirects: int
    min_bytes: int
    max_bytes: int


class FetchError(Exception):
    """A failed fetch with its reason code; ``str()`` is what img2dataset records."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def classify_error(exc: BaseException) -> tuple[str, str]:
    """Map an exception raised by urllib / http.client / the guard to ``(reason, detail)``."""
    if isinstance(exc, RefusedError):
        return exc.refusal.reason, exc.refusal.detail
    if isinstance(exc, HTTPError):
        transient = exc.code in (408, 429) or exc.code >= 500
        return (DOWNLOAD_TRANSIENT if transient else DOWNLOAD_FAILED), f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, URLError) and isinstance(exc.reason, BaseException):
        return classify_error(exc.reason)
    if isinstance(exc, TimeoutError):
        return DOWNLOAD_TIMEOUT, str(exc) or "timed out"
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | http.client.IncompleteRead):
        return DOWNLOAD_TRANSIENT, f"{type(exc).__name__}: {exc}"
    return DOWNLOAD_FAILED, f"{type(exc).__name__}: {exc}"


class Deadline:
    """A watchdog for one fetch attempt: ``seconds`` after creation it shuts down every watched socket.

    ``watch(sock)`` is the opener's ``on_connect`` hook. It keeps a duplicate descriptor of the socket:
    ``shutdown`` acts on the connection, not the descriptor, so shutting the duplicate down ends every
    blocked or later read on the original (plain or TLS-wrapped), and the duplicate is closed only here,
    so the watchdog can never hit a reused descriptor. ``expired`` tells whether it fired; ``close()``
    (idempotent) stops the timer and releases the duplicates. Use it as a context manager.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._closed = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.name = "rs5m-fetch-deadline"
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down once the deadline passes (at once if it already has)."""
        dup = sock.dup()
        with self._lock:
            if not self._closed:
                self._socks.append(dup)
                if self.expired:
                    _shutdown(dup)
                return
        dup.close()

    def _expire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.expired = True
            for sock in self._socks:
                _shutdown(sock)

    def close(self) -> None:
        """Stop the watchdog and close the duplicate descriptors."""
        self._timer.cancel()
        with self._lock:
            self._closed = True
            socks, self._socks = self._socks, []
        for sock in socks:
            sock.close()

    def __enter__(self) -> Deadline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by the peer: nothing left to stop
        pass


class GuardedFetcher:
    """Fetches URLs through the egress guard with a per-host concurrency cap and size/time limits."""

    def __init__(self, cfg: FetchSettings) -> None:
        self._cfg = cfg
        self._allow = normalise_allowlist(cfg.allow_hosts)
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    @contextmanager
    def _host_slot(self, host: str) -> Iterator[None]:
        with self._lock:
            slot = self._slots.setdefault(host, threading.BoundedSemaphore(self._cfg.per_host_concurrency))
        with slot:
            yield

    def __call__(
        self, row: tuple[int, str], *, retries: int, user_agent_token: str | None, directives: set[str] | None
    ) -> tuple[int, io.BytesIO | None, str | None]:
        key, url = row
        error = FetchError(DOWNLOAD_FAILED, "not attempted")
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(self._cfg.retry_backoff_s * 2 ** (attempt - 1))
            try:
                return key, io.BytesIO(self.fetch(url, user_agent_token, directives)), None
            except FetchError as exc:
                error = exc
            if error.reason not in TRANSIENT_REASONS:
                break
        return key, None, str(error)

    def fetch(self, url: str, user_agent_token: str | None, directives: set[str] | None) -> bytes:
        """Return the body of ``url`` or raise ``FetchError``; one attempt, within ``total_timeout``."""
        parsed = split_url(url)
        if isinstance(parsed, Refusal):
            raise FetchError(parsed.reason, parsed.detail)
        agent = (
            f"Mozilla/5.0 (compatible; {user_agent_token or 'rs5m'}; +https://github.com/rom1504/img2dataset)"
        )
        request = urllib.request.Request(url, headers={"User-Agent": agent})
        cfg = self._cfg
        with self._host_slot(parsed[1]), Deadline(cfg.total_timeout) as deadline:
            opener = build_guarded_opener(
                self._allow, max_redirects=cfg.max_redirects, on_connect=deadline.watch
            )
            try:
                with opener.open(request, timeout=cfg.timeout) as response:
                    if directives and _is_disallowed(response.headers, user_agent_token, directives):
                        raise FetchError(DISALLOWED_BY_HEADER, "X-Robots-Tag opt-out")
                    body = self._read(response, deadline)
            except FetchError:
                raise
            except Exception as exc:  # every other failure of one URL becomes a counted reason
                if deadline.expired:  # the watchdog's shutdown surfaces as a reset, EOF or bad status
                    raise FetchError(DOWNLOAD_TIMEOUT, f"not done within {cfg.total_timeout}s") from exc
                raise FetchError(*classify_error(exc)) from exc
            if deadline.expired:  # a body without Content-Length that the shutdown cut short
                raise FetchError(DOWNLOAD_TIMEOUT, f"not done within {cfg.total_timeout}s")
        return body

    def _read(self, response: Any, deadline: Deadline) -> bytes:
        cfg = self._cfg
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > cfg.max_bytes:
            raise FetchError(RESPONSE_TOO_LARGE, f"Content-Length {declared} > {cfg.max_bytes}")
        body = bytearray()
        while chunk := response.read(_CHUNK):
            body += chunk
            if len(body) > cfg.max_bytes:
                raise FetchError(RESPONSE_TOO_LARGE, f"body > {cfg.max_bytes} bytes")
            if deadline.expired:
                raise FetchError(DOWNLOAD_TIMEOUT, f"not done within {cfg.total_timeout}s")
        if len(body) < cfg.min_bytes:
            raise FetchError(RESPONSE_TOO_SMALL, f"{len(body)} bytes < {cfg.min_bytes}")
        return bytes(body)


def _is_disallowed(headers: Any, token: str | None, directives: set[str]) -> bool:
    from img2dataset.downloader import is_disallowed  # same opt-out parsing as plain img2dataset

    return bool(is_disallowed(headers, token, directives))


class GuardedTimeout(float):
    """img2dataset's ``timeout`` value, carrying the fetcher that the dispatcher routes rows to."""

    fetcher: GuardedFetcher

    def __new__(cls, value: float, fetcher: GuardedFetcher) -> GuardedTimeout:
        obj = super().__new__(cls, value)
        obj.fetcher = fetcher
        return obj


def install_hook() -> None:
    """Route img2dataset fetches whose timeout is a ``GuardedTimeout`` to its fetcher (idempotent)."""
    import img2dataset.downloader as i2d

    with _hook_lock:
        original: Callable[..., Any] = i2d.download_image_with_retry
        if getattr(original, "_rs5m_dispatch", False):
            return
        if list(inspect.signature(original).parameters) != _HOOK_PARAMS:
            raise RuntimeError(
                "img2dataset.downloader.download_image_with_retry changed; pin img2dataset 1.47"
            )

        def dispatch(row, timeout, retries, user_agent_token, disallowed_header_directives):
            fetcher = getattr(timeout, "fetcher", None)
            if fetcher is None:
                return original(row, timeout, retries, user_agent_token, disallowed_header_directives)
            return fetcher(
                row,
                retries=retries,
                user_agent_token=user_agent_token,
                directives=disallowed_header_directives,
            )

        dispatch._rs5m_dispatch = True  # type: ignore[attr-defined]
        i2d.download_image_with_retry = dispatch

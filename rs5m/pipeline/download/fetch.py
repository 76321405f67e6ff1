"""The guarded, per-host-polite fetch function that img2dataset's downloader calls for every URL.

How it hooks img2dataset 1.47: ``Downloader.download_shard`` fetches each row through the module
attribute ``img2dataset.downloader.download_image_with_retry(row, timeout=self.timeout, ...)``.
``install_hook`` replaces that attribute once per process with a dispatcher: when the ``timeout`` it
receives is a ``GuardedTimeout`` (a float that carries a ``GuardedFetcher``), the row is fetched by
that fetcher; any other call goes to img2dataset's own function unchanged. So several partitions
with different configs can download in one process at once, and plain img2dataset use in the same
process is untouched. The hook refuses to install if img2dataset's signature changed.

Fetch contract (``GuardedFetcher.__call__``): returns img2dataset's ``(key, BytesIO | None, error)``.
``error`` is ``"<reason>: <detail>"`` with a reason from ``FETCH_REASONS``. Permanent reasons (never
retried, in the run or by ``--retry-failed``): ``dns_failed`` (no such name / no address),
``download_failed`` (connection refused, HTTP 404, 410 and every other 4xx but 408 and 429, TLS
errors, anything unrecognised), the guard's refusals and the size / opt-out checks. Transient reasons
(``TRANSIENT_REASONS``, re-fetched by ``--retry-failed``): ``download_timeout``, ``download_transient``
(HTTP 408/429/5xx, connection reset or aborted, host or network unreachable) and ``dns_transient``
(``EAI_AGAIN``, resolver failure, no answer in time). Within a run, transient failures other than
``dns_transient`` are retried with exponential back-off (a DNS failure is cached for a while, so an
immediate retry would get the same answer). At most ``per_host_concurrency`` requests run against
one host at a time (a semaphore per host name).

Names are resolved by a per-process ``CachingResolver`` (``rs5m.pipeline.download.resolver``) through the
egress guard, which checks every address of every answer.

Time limits: ``timeout`` bounds each socket operation (connect, every read); ``total_timeout`` bounds
one attempt as a whole - name lookups, connect, TLS, status line, headers and body - however the server
paces its bytes (a lookup still running at the deadline fails the attempt with ``dns_transient``). A
watchdog (``Deadline``) shuts the attempt's sockets down when its time is up, so a server that drips
one byte per read, each within ``timeout``, cannot hold a download thread much past ``total_timeout``;
such an attempt fails with ``download_timeout`` (transient, so retried).
"""

from __future__ import annotations

import errno
import http.client
import inspect
import io
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, Protocol
from urllib.error import HTTPError, URLError

from rs5m.core.schema import Reason
from rs5m.pipeline.download.deadline import Deadline
from rs5m.pipeline.download.netguard import (
    Refusal,
    RefusedError,
    build_guarded_opener,
    normalise_allowlist,
    split_url,
)
from rs5m.pipeline.download.resolver import (
    DNS_FAILED,
    DNS_REASONS,
    DNS_TRANSIENT,
    DNSError,
    DnsSettings,
    classify_lookup_error,
    shared_resolver,
)

DOWNLOAD_FAILED = Reason.DOWNLOAD_FAILED.value
DOWNLOAD_TIMEOUT = Reason.DOWNLOAD_TIMEOUT.value
DOWNLOAD_TRANSIENT = Reason.DOWNLOAD_TRANSIENT.value
DISALLOWED_BY_HEADER = Reason.DISALLOWED_BY_HEADER.value
RESPONSE_TOO_LARGE = Reason.RESPONSE_TOO_LARGE.value
RESPONSE_TOO_SMALL = Reason.RESPONSE_TOO_SMALL.value
TRANSIENT_REASONS = frozenset({DOWNLOAD_TIMEOUT, DOWNLOAD_TRANSIENT, DNS_TRANSIENT})
_RETRIED_IN_RUN = TRANSIENT_REASONS - {DNS_TRANSIENT}
_UNREACHABLE = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN})
FETCH_REASONS = frozenset(
    {
        DOWNLOAD_FAILED,
        DNS_FAILED,
        DNS_TRANSIENT,
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


class HostResolver(Protocol):
    """What the fetcher resolves names with (``CachingResolver``, or a test's or bench's own)."""

    def resolve(self, host: str, port: int, until: float | None = None) -> list[tuple]: ...


class FetchSettings(DnsSettings, Protocol):
    """The ``DownloadConfig`` fields the fetcher reads."""

    timeout: float
    total_timeout: float
    retry_backoff_s: float
    per_host_concurrency: int
    allow_hosts: list[str]
    max_redirects: int
    min_bytes: int
    max_bytes: int
    dns_prefetch: bool
    dns_settle_s: float


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
    if isinstance(exc, DNSError | socket.gaierror):
        return classify_lookup_error(exc)
    if isinstance(exc, TimeoutError):
        return DOWNLOAD_TIMEOUT, str(exc) or "timed out"
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | http.client.IncompleteRead):
        return DOWNLOAD_TRANSIENT, f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE:  # a route may come back; a refusal will not
        return DOWNLOAD_TRANSIENT, f"{type(exc).__name__}: {exc}"
    return DOWNLOAD_FAILED, f"{type(exc).__name__}: {exc}"


class GuardedFetcher:
    """Fetches URLs through the egress guard with a per-host concurrency cap and size/time limits.

    ``resolver`` defaults to this process's shared ``CachingResolver`` for ``cfg``'s DNS settings.
    """

    def __init__(self, cfg: FetchSettings, resolver: HostResolver | None = None) -> None:
        self._cfg = cfg
        self._resolver = resolver if resolver is not None else shared_resolver(cfg)
        self._allow = normalise_allowlist(cfg.allow_hosts)
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def prefetch(self, urls: Iterable[str | None]) -> set[str]:
        """Start the lookups of the hosts of ``urls`` (fetchable forms only), wait up to ``dns_settle_s``
        for them, and return the host names whose lookups are still running then (slow or dead names).

        Nothing (an empty set, no wait) when ``dns_prefetch`` is off or the resolver cannot prefetch.
        """
        prefetch = getattr(self._resolver, "prefetch", None)
        slow_names = getattr(self._resolver, "slow_names", None)
        if not self._cfg.dns_prefetch or prefetch is None or slow_names is None:
            return set()
        hosts = dict.fromkeys(p[1] for p in map(split_url, filter(None, urls)) if not isinstance(p, Refusal))
        prefetch(hosts)
        return slow_names(hosts, self._cfg.dns_settle_s) if self._cfg.dns_settle_s > 0 else set()

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
            if error.reason not in _RETRIED_IN_RUN:
                break
        return key, None, str(error)

    def fetch(self, url: str, user_agent_token: str | None, directives: set[str] | None) -> bytes:
        """Return the body of ``url`` or raise ``FetchError``; one attempt, within ``total_timeout``."""
        parsed = split_url(url)
        if isinstance(parsed, Refusal):
            raise FetchError(parsed.reason, parsed.detail)
        known = getattr(self._resolver, "known_failure", None)
        if known is not None and (failure := known(parsed[1])) is not None:
            raise FetchError(failure.reason, failure.detail)  # a dead name: no slot, no watchdog, no opener
        agent = (
            f"Mozilla/5.0 (compatible; {user_agent_token or 'rs5m'}; +https://github.com/rom1504/img2dataset)"
        )
        request = urllib.request.Request(url, headers={"User-Agent": agent})
        cfg = self._cfg
        with self._host_slot(parsed[1]), Deadline(cfg.total_timeout) as deadline:
            opener = build_guarded_opener(
                self._allow,
                max_redirects=cfg.max_redirects,
                on_connect=deadline.watch,
                resolver=partial(self._resolver.resolve, until=deadline.ends_at),
            )
            try:
                with opener.open(request, timeout=cfg.timeout) as response:
                    if directives and _is_disallowed(response.headers, user_agent_token, directives):
                        raise FetchError(DISALLOWED_BY_HEADER, "X-Robots-Tag opt-out")
                    body = self._read(response, deadline)
            except FetchError:
                raise
            except Exception as exc:  # every other failure of one URL becomes a counted reason
                reason, detail = classify_error(exc)
                # the watchdog's shutdown surfaces as a reset, EOF or bad status; a lookup knows its cause
                if deadline.expired and reason not in DNS_REASONS:
                    raise FetchError(DOWNLOAD_TIMEOUT, f"not done within {cfg.total_timeout}s") from exc
                raise FetchError(reason, detail) from exc
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

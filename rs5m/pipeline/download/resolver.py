"""A per-process DNS cache for the downloader: bounded, TTL-limited, coalescing, deadline-aware.

Contract of ``CachingResolver.resolve(host, port, until)``:
- Returns the ``getaddrinfo`` entries of ``host`` (every address; the egress guard in
  ``rs5m.pipeline.download.netguard`` checks each one and connects only to those it checked), or raises
  ``DNSError`` with a reason: ``dns_failed`` (permanent: the name does not exist, has no address, or is
  not a valid host name) or ``dns_transient`` (``EAI_AGAIN`` / resolver failure, or no answer in time).
- Answers are cached per host name (case-insensitive) in an LRU of ``dns_cache_size`` names: addresses
  for ``dns_ttl_s``, permanent failures for ``dns_negative_ttl_s``, temporary ones for ``dns_error_ttl_s``
  (``getaddrinfo`` exposes no record TTLs, so these are caps, not the zone's TTLs). Size 0: no cache.
- At most one lookup per host name is in flight; concurrent callers for that name wait for it.
  Lookups run on daemon threads, at most ``dns_max_lookups`` at once (more wait in a queue, callers'
  lookups ahead of prefetched ones), so a caller never blocks inside the system resolver: it waits at
  most until ``until`` (a ``time.monotonic()`` instant, the fetch deadline) and at most ``dns_timeout_s``
  after the lookup started. A lookup still running past ``dns_timeout_s`` makes every caller for that
  name fail at once with ``dns_transient`` until it returns; its late answer is cached as usual.
- ``prefetch(hosts)`` queues lookups of names not cached or in flight and returns at once, so the
  lookups of a shard's hosts run on the lookup threads, ahead of and beside the fetch threads; then
  ``slow_names(hosts, wait_s)`` tells which lookups are still running after a short wait, so their
  URLs can be fetched last (a dead name then costs the fetch threads next to nothing).
- ``shared_resolver(cfg)`` gives one resolver per process and setting, so partitions that run one after
  another in a warm worker share the cache.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rs5m.core.schema import Reason

DNS_FAILED = Reason.DNS_FAILED.value
DNS_TRANSIENT = Reason.DNS_TRANSIENT.value
DNS_REASONS = frozenset({DNS_FAILED, DNS_TRANSIENT})
# "no such name", "no address for the name", "no address in this family": the zone answered, and said no
_PERMANENT_EAI = frozenset(
    getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA", "EAI_ADDRFAMILY") if hasattr(socket, name)
)
_SHARED_MAX = 16

Lookup = Callable[..., list[tuple[Any, ...]]]  # getaddrinfo-like: lookup(host, port, type=SOCK_STREAM)


class DnsSettings(Protocol):
    """The ``DownloadConfig`` fields the resolver reads."""

    dns_cache_size: int
    dns_ttl_s: float
    dns_negative_ttl_s: float
    dns_error_ttl_s: float
    dns_timeout_s: float
    dns_max_lookups: int


class DNSError(OSError):
    """A failed name lookup with its reason code (``dns_failed`` or ``dns_transient``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def system_lookup(host: str, port: int | None, **kwargs: Any) -> list[tuple[Any, ...]]:
    """``socket.getaddrinfo``, looked up at call time (so a patched one is seen)."""
    return socket.getaddrinfo(host, port, **kwargs)


def classify_lookup_error(exc: BaseException) -> tuple[str, str]:
    """Map an exception of a ``getaddrinfo``-like lookup to ``(reason, detail)``."""
    if isinstance(exc, DNSError):
        return exc.reason, exc.detail
    if isinstance(exc, socket.gaierror) and exc.errno in _PERMANENT_EAI:
        return DNS_FAILED, f"gaierror {exc.errno}: {exc.strerror}"
    if isinstance(exc, UnicodeError):  # the idna codec refused the name (empty or over-long label, ...)
        return DNS_FAILED, f"invalid host name: {exc}"
    return DNS_TRANSIENT, f"{type(exc).__name__}: {exc}"


@dataclass(slots=True)
class _Answer:
    infos: tuple[tuple[Any, ...], ...] | None
    reason: str | None
    detail: str
    expires: float

    def result(self) -> list[tuple[Any, ...]]:
        if self.reason is not None:
            raise DNSError(self.reason, self.detail)  # a fresh exception per caller: they run in parallel
        return list(self.infos or ())


@dataclass(slots=True)
class _Lookup:
    host: str
    started: float | None = None  # time.monotonic() when a lookup thread took it; None while queued
    urgent: bool = False  # a caller waits for it (else only a prefetch asked)
    done: threading.Event = field(default_factory=threading.Event)
    answer: _Answer | None = None


class CachingResolver:
    """The per-process host-name cache described in the module docstring."""

    def __init__(
        self,
        lookup: Lookup = system_lookup,
        *,
        cache_size: int = 65_536,
        ttl_s: float = 300.0,
        negative_ttl_s: float = 60.0,
        error_ttl_s: float = 30.0,
        timeout_s: float = 2.0,
        max_lookups: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._size, self._timeout_s, self._max = cache_size, timeout_s, max_lookups
        self._ttl = {None: ttl_s, DNS_FAILED: negative_ttl_s, DNS_TRANSIENT: error_ttl_s}
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, _Answer] = OrderedDict()
        self._pending: dict[str, _Lookup] = {}
        self._urgent: deque[_Lookup] = deque()
        self._background: deque[_Lookup] = deque()
        self._running = 0
        self.counts = {"hits": 0, "lookups": 0, "joined": 0, "timeouts": 0, "prefetched": 0}

    @classmethod
    def from_settings(cls, cfg: DnsSettings, lookup: Lookup = system_lookup) -> CachingResolver:
        """A resolver with the cache sizes, TTLs and limits of a ``DownloadConfig``."""
        return cls(
            lookup,
            cache_size=cfg.dns_cache_size,
            ttl_s=cfg.dns_ttl_s,
            negative_ttl_s=cfg.dns_negative_ttl_s,
            error_ttl_s=cfg.dns_error_ttl_s,
            timeout_s=cfg.dns_timeout_s,
            max_lookups=cfg.dns_max_lookups,
        )

    def resolve(self, host: str, port: int, until: float | None = None) -> list[tuple[Any, ...]]:
        """The addresses of ``host``, or ``DNSError``; waits at most until ``until`` (monotonic).

        ``port`` is accepted for the guard's call signature; answers are per name, for any port.
        """
        key = host.lower()
        with self._lock:
            answer = self._fresh(key)
            if answer is not None:
                self.counts["hits"] += 1
            else:
                pending = self._pending.get(key)
                if pending is None:
                    pending = self._request(key, urgent=True)
                else:
                    self.counts["joined"] += 1
                    if not pending.urgent:  # prefetched, maybe still queued: a caller now waits for it
                        pending.urgent = True
                        self._urgent.append(pending)
        if answer is not None:
            return answer.result()
        return self._wait(pending, until)

    def known_failure(self, host: str) -> DNSError | None:
        """Without waiting: the failure ``resolve(host)`` would raise at once (a cached failure, or a
        lookup running past ``dns_timeout_s``), else ``None``."""
        key = host.lower()
        with self._lock:
            answer = self._fresh(key)
            job = self._pending.get(key) if answer is None else None
        if answer is not None:
            return DNSError(answer.reason, answer.detail) if answer.reason else None
        if job is not None and job.started is not None and time.monotonic() >= job.started + self._timeout_s:
            return DNSError(DNS_TRANSIENT, f"lookup of {key} not answered within {self._timeout_s}s")
        return None

    def prefetch(self, hosts: Iterable[str]) -> int:
        """Queue lookups of the names in ``hosts`` that are neither cached nor in flight; return how many.

        Does not wait. At most ``cache_size`` names are queued per call (no cache: none), since answers
        that cannot be kept are of no use.
        """
        queued = 0
        with self._lock:
            for host in hosts:
                if queued >= self._size:
                    break
                key = host.lower()
                if key not in self._pending and self._fresh(key) is None:
                    self._request(key, urgent=False)
                    queued += 1
            self.counts["prefetched"] += queued
        return queued

    def slow_names(self, hosts: Iterable[str], wait_s: float) -> set[str]:
        """Wait up to ``wait_s`` for the lookups of ``hosts`` in flight or queued; return the names
        (lower-case) whose lookup is still running when the wait ends, after running at least half of it.

        Ends early once they are all answered (then the set is empty). The caller fetches the URLs of
        these likely dead or slow names last, so its fetch threads do not all wait on them at once.
        """
        start = time.monotonic()
        keys = {host.lower() for host in hosts}
        with self._lock:
            waiting = [job for key in keys if (job := self._pending.get(key)) is not None]
        for job in waiting:
            left = start + wait_s - time.monotonic()
            if left <= 0:
                break
            job.done.wait(left)
        now = time.monotonic()
        return {
            job.host
            for job in waiting
            if not job.done.is_set() and job.started is not None and now - job.started >= wait_s / 2
        }

    def _fresh(self, key: str) -> _Answer | None:
        # lock held: the unexpired cached answer of ``key`` (marked recently used), else None
        answer = self._cache.get(key)
        if answer is None:
            return None
        if answer.expires > self._clock():
            self._cache.move_to_end(key)
            return answer
        del self._cache[key]
        return None

    def _wait(self, pending: _Lookup, until: float | None) -> list[tuple[Any, ...]]:
        while not pending.done.is_set():
            started = pending.started  # set once, under the lock; a stale None only means one more poll
            stop = until if started is None else started + self._timeout_s
            if until is not None and stop is not None:
                stop = min(stop, until)
            left = None if stop is None else stop - time.monotonic()
            if left is not None and left <= 0:
                with self._lock:
                    self.counts["timeouts"] += 1
                if until is not None and (started is None or until < started + self._timeout_s):
                    raise DNSError(
                        DNS_TRANSIENT, f"lookup of {pending.host} still running at the fetch deadline"
                    )
                raise DNSError(
                    DNS_TRANSIENT, f"lookup of {pending.host} not answered within {self._timeout_s}s"
                )
            if started is None:  # queued: look again soon, its time limit starts when it does
                left = 0.05 if left is None else min(left, 0.05)
            pending.done.wait(left)
        assert pending.answer is not None  # set before done
        return pending.answer.result()

    def _request(self, key: str, urgent: bool) -> _Lookup:
        # lock held
        pending = _Lookup(key, urgent=urgent)
        self._pending[key] = pending
        self.counts["lookups"] += 1
        (self._urgent if urgent else self._background).append(pending)
        while self._running < self._max and (job := self._next()) is not None:
            self._running += 1
            threading.Thread(target=self._run, args=(job,), name="rs5m-dns", daemon=True).start()
        return pending

    def _next(self) -> _Lookup | None:
        # lock held: the next queued lookup, callers' first; marks it started
        for queue in (self._urgent, self._background):
            while queue:
                job = queue.popleft()
                if job.started is None:  # a promoted lookup is in both queues: skip the second copy
                    job.started = time.monotonic()
                    return job
        return None

    def _run(self, job: _Lookup | None) -> None:
        while job is not None:
            answer = self._ask(job.host)
            with self._lock:
                if self._size:
                    self._cache[job.host] = answer
                    self._cache.move_to_end(job.host)
                    while len(self._cache) > self._size:
                        self._cache.popitem(last=False)
                del self._pending[job.host]
                job.answer = answer
                job.done.set()
                job = self._next()
                if job is None:
                    self._running -= 1

    def _ask(self, host: str) -> _Answer:
        # the port does not change the addresses: ask for the name only, the guard adds the port
        try:
            infos = tuple(self._lookup(host, None, type=socket.SOCK_STREAM))
            reason, detail = (None, "") if infos else (DNS_FAILED, "the name has no address")
        except Exception as exc:  # any failure of the system resolver is one URL's DNS failure
            infos, (reason, detail) = None, classify_lookup_error(exc)
        detail = f"{host}: {detail}" if reason else detail
        return _Answer(infos, reason, detail, self._clock() + self._ttl[reason])


_shared: OrderedDict[tuple[Any, ...], CachingResolver] = OrderedDict()
_shared_lock = threading.Lock()


def shared_resolver(cfg: DnsSettings, lookup: Lookup = system_lookup) -> CachingResolver:
    """This process's resolver for ``cfg``'s DNS settings and ``lookup`` (created on first use)."""
    key = (
        lookup,
        cfg.dns_cache_size,
        cfg.dns_ttl_s,
        cfg.dns_negative_ttl_s,
        cfg.dns_error_ttl_s,
        cfg.dns_timeout_s,
        cfg.dns_max_lookups,
    )
    with _shared_lock:
        resolver = _shared.get(key)
        if resolver is None:
            resolver = _shared[key] = CachingResolver.from_settings(cfg, lookup)
            while len(_shared) > _SHARED_MAX:  # only tests and benches make many settings in one process
                _shared.popitem(last=False)
        _shared.move_to_end(key)
        return resolver

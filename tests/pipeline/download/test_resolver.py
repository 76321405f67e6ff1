"""The per-process DNS cache: TTLs, negative answers, LRU bound, coalescing, time limits, lookup cap.

Every lookup goes to ``FakeDNS``; no real resolver is asked. Expiry runs on a fake clock; the time
limits are real (short) waits.
"""

from __future__ import annotations

import socket
import threading
import time
from multiprocessing.pool import ThreadPool

import pytest

from rs5m.config import DownloadConfig
from rs5m.pipeline.download.resolver import CachingResolver, DNSError, shared_resolver

from .conftest import HANG, FakeDNS

PUBLIC = "93.184.216.34"


class Clock:
    """A settable monotonic clock for cache expiry."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _ips(infos: list[tuple]) -> list[str]:
    return [info[4][0] for info in infos]


def _reason(resolver: CachingResolver, host: str, **kw: float) -> str:
    with pytest.raises(DNSError) as info:
        resolver.resolve(host, 80, **kw)
    return info.value.reason


def _settle(resolver: CachingResolver, host: str, limit: float = 10.0) -> None:
    """Wait until no lookup of ``host`` is in flight (a late answer has been stored)."""
    end = time.monotonic() + limit
    while host in resolver._pending:
        assert time.monotonic() < end, f"lookup of {host} never finished"
        time.sleep(0.01)


def test_answers_are_cached_until_their_ttl() -> None:
    clock, dns = Clock(), FakeDNS({"a.example": [PUBLIC, "2606:2800:220:1::1"]})
    resolver = CachingResolver(dns, ttl_s=300, clock=clock)
    assert _ips(resolver.resolve("a.example", 80)) == [PUBLIC, "2606:2800:220:1::1"]
    assert _ips(resolver.resolve("A.Example", 443)) == [PUBLIC, "2606:2800:220:1::1"]  # any port, any case
    clock.t += 299
    resolver.resolve("a.example", 80)
    assert dns.calls == {"a.example": 1} and resolver.counts["hits"] == 2
    clock.t += 2
    resolver.resolve("a.example", 80)
    assert dns.calls == {"a.example": 2}


@pytest.mark.parametrize(
    ("answer", "reason", "ttl"),
    [
        (socket.EAI_NONAME, "dns_failed", 60),  # NXDOMAIN
        (socket.EAI_NODATA, "dns_failed", 60),  # the name exists, without an address
        ([], "dns_failed", 60),  # an empty answer
        (socket.EAI_AGAIN, "dns_transient", 10),  # SERVFAIL / no answer from the resolver
        (socket.EAI_FAIL, "dns_transient", 10),
    ],
)
def test_failures_are_cached_briefly_by_kind(answer: object, reason: str, ttl: float) -> None:
    clock, dns = Clock(), FakeDNS({"x.example": answer})
    resolver = CachingResolver(dns, negative_ttl_s=60, error_ttl_s=10, clock=clock)
    assert _reason(resolver, "x.example") == reason
    clock.t += ttl - 1
    assert _reason(resolver, "x.example") == reason
    assert dns.calls["x.example"] == 1
    clock.t += 2
    assert _reason(resolver, "x.example") == reason
    assert dns.calls["x.example"] == 2


def test_an_invalid_name_is_a_permanent_failure() -> None:
    def idna_refuses(host: str, *args: object, **kwargs: object) -> list[tuple]:
        raise UnicodeError("encoding with 'idna' codec failed (UnicodeError: label too long)")

    assert _reason(CachingResolver(idna_refuses), "x" * 64 + ".example") == "dns_failed"


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    dns = FakeDNS({h: [PUBLIC] for h in ("a", "b", "c")})
    resolver = CachingResolver(dns, cache_size=2)
    for host in ("a", "b", "a", "c", "a", "b"):  # c evicts b (a was used since), then b evicts c
        resolver.resolve(host, 80)
    assert dns.calls == {"a": 1, "b": 2, "c": 1}
    assert len(resolver._cache) == 2


def test_size_zero_looks_up_every_time() -> None:
    dns = FakeDNS({"a": [PUBLIC]})
    resolver = CachingResolver(dns, cache_size=0)
    for _ in range(3):
        resolver.resolve("a", 80)
    assert dns.calls == {"a": 3}


def test_concurrent_lookups_of_one_host_coalesce() -> None:
    dns = FakeDNS({"busy.example": [PUBLIC], "other.example": [PUBLIC]}, delay=0.3)
    resolver = CachingResolver(dns)
    hosts = ["busy.example"] * 12 + ["other.example"] * 4
    with ThreadPool(16) as pool:
        results = pool.map(lambda h: _ips(resolver.resolve(h, 80)), hosts)
    assert results == [[PUBLIC]] * 16
    assert dns.calls == {"busy.example": 1, "other.example": 1}
    assert dns.max_active == 2  # one lookup per host in flight, the two hosts in parallel


def test_a_hung_lookup_costs_one_timeout_then_fails_fast(fake_dns: FakeDNS) -> None:
    fake_dns.answers |= {"hung.example": HANG, "fine.example": [PUBLIC]}
    resolver = CachingResolver(fake_dns, timeout_s=0.3, error_ttl_s=0)
    t0 = time.monotonic()
    assert _reason(resolver, "hung.example") == "dns_transient"
    assert 0.25 <= time.monotonic() - t0 < 3.0
    t1 = time.monotonic()
    assert _reason(resolver, "hung.example") == "dns_transient"  # still running, overdue: no second wait
    assert time.monotonic() - t1 < 0.1
    assert _ips(resolver.resolve("fine.example", 80)) == [PUBLIC]  # other names are not held up
    fake_dns.release.set()
    _settle(resolver, "hung.example")
    assert _ips(resolver.resolve("hung.example", 80)) == ["127.0.0.1"]  # the late answer is kept
    assert fake_dns.calls["hung.example"] == 1


def test_the_caller_deadline_caps_the_wait(fake_dns: FakeDNS) -> None:
    fake_dns.answers["hung.example"] = HANG
    resolver = CachingResolver(fake_dns, timeout_s=30)
    t0 = time.monotonic()
    with pytest.raises(DNSError, match="fetch deadline") as info:
        resolver.resolve("hung.example", 80, until=time.monotonic() + 0.3)
    assert info.value.reason == "dns_transient"
    assert 0.25 <= time.monotonic() - t0 < 3.0


def test_lookups_in_flight_are_capped_and_queued(fake_dns: FakeDNS) -> None:
    fake_dns.answers |= {"h1": HANG, "h2": HANG, "h3": [PUBLIC]}
    resolver = CachingResolver(fake_dns, max_lookups=2, timeout_s=30)
    soon = time.monotonic() + 0.2
    for host in ("h1", "h2", "h3"):
        assert _reason(resolver, host, until=soon) == "dns_transient"
    assert fake_dns.max_active == 2 and "h3" not in fake_dns.calls  # h3 waits for a free slot
    fake_dns.release.set()
    assert _ips(resolver.resolve("h3", 80, until=time.monotonic() + 10)) == [PUBLIC]
    for host in ("h1", "h2"):
        _settle(resolver, host)
    assert fake_dns.max_active == 2 and resolver._running == 0


def test_shared_resolver_is_one_per_process_and_setting() -> None:
    dns = FakeDNS({})
    first = shared_resolver(DownloadConfig(), dns)
    assert shared_resolver(DownloadConfig(timeout=3), dns) is first  # not a DNS setting
    assert shared_resolver(DownloadConfig(dns_ttl_s=5), dns) is not first
    assert shared_resolver(DownloadConfig(), FakeDNS({})) is not first


def test_prefetch_queues_without_waiting_and_answers_later_calls(fake_dns: FakeDNS) -> None:
    fake_dns.answers |= {"a": [PUBLIC], "b": [PUBLIC], "hung": HANG}
    resolver = CachingResolver(fake_dns, timeout_s=0.3)
    resolver.resolve("a", 80)
    t0 = time.monotonic()
    assert resolver.prefetch(["A", "b", "hung", "nx", "b"]) == 3  # a is cached, b asked once
    assert time.monotonic() - t0 < 0.1
    _settle(resolver, "b")
    _settle(resolver, "nx")
    assert _ips(resolver.resolve("b", 80)) == [PUBLIC] and _reason(resolver, "nx") == "dns_failed"
    assert fake_dns.calls == {"a": 1, "b": 1, "hung": 1, "nx": 1}
    assert _reason(resolver, "hung") == "dns_transient"  # started at the prefetch: already overdue
    assert CachingResolver(fake_dns, cache_size=0).prefetch(["x"]) == 0  # nowhere to keep answers


def test_a_caller_goes_ahead_of_prefetched_lookups(fake_dns: FakeDNS) -> None:
    fake_dns.answers |= {"hung": HANG, **{h: [PUBLIC] for h in "abc"}}
    resolver = CachingResolver(fake_dns, max_lookups=1, timeout_s=0.5)
    resolver.prefetch(["hung", "a", "b", "c"])
    threading.Timer(0.8, fake_dns.release.set).start()
    t0 = time.monotonic()
    # "c" waits in the queue longer than timeout_s: its limit only starts when its lookup does
    assert _ips(resolver.resolve("c", 80, until=time.monotonic() + 10)) == [PUBLIC]
    assert time.monotonic() - t0 >= 0.7
    for host in "ab":
        _settle(resolver, host)
    assert list(fake_dns.calls) == ["hung", "c", "a", "b"]


def test_slow_names_are_those_still_running_after_the_wait(fake_dns: FakeDNS) -> None:
    fake_dns.answers |= {"hung": HANG, "a": [PUBLIC]}
    resolver = CachingResolver(fake_dns, timeout_s=30)
    resolver.prefetch(["a", "hung"])
    t0 = time.monotonic()
    assert resolver.slow_names(["A", "Hung", "never-asked"], wait_s=0.3) == {"hung"}
    assert 0.25 <= time.monotonic() - t0 < 2.0
    t1 = time.monotonic()
    assert resolver.slow_names(["a"], wait_s=5) == set()  # answered already: no wait
    assert time.monotonic() - t1 < 0.1


def test_known_failure_answers_without_waiting(fake_dns: FakeDNS) -> None:
    fake_dns.answers |= {"ok": [PUBLIC], "hung": HANG}
    resolver = CachingResolver(fake_dns, timeout_s=0.3)
    assert resolver.known_failure("nx") is None  # never asked: unknown, and no lookup is started
    assert fake_dns.calls == {}
    _reason(resolver, "nx")
    resolver.resolve("ok", 80)
    resolver.prefetch(["hung"])
    assert resolver.known_failure("NX").reason == "dns_failed"
    assert resolver.known_failure("ok") is None
    assert resolver.known_failure("hung") is None  # running, not yet past its time limit
    time.sleep(0.35)
    assert resolver.known_failure("hung").reason == "dns_transient"

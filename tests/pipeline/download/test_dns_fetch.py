"""The fetcher with its DNS cache: one lookup per host, every answer checked, lookups inside the deadline,
permanent and transient failures told apart (and only transient HTTP/connection ones retried in-run).

Names are answered by ``FakeDNS``; the only connections go to the test server on 127.0.0.1.
"""

from __future__ import annotations

import socket
import time
from multiprocessing.pool import ThreadPool

import pyarrow as pa
import pytest

from rs5m.config import DownloadConfig
from rs5m.pipeline.download.fetch import GuardedFetcher
from rs5m.pipeline.download.img2ds import slow_hosts_last
from rs5m.pipeline.download.resolver import CachingResolver

from .conftest import HANG, FakeDNS

GOOD = ["img-a.localhost", "img-b.localhost"]


def _fetcher(dns: FakeDNS, allow: list[str] | None = None, **cfg: float) -> GuardedFetcher:
    base = dict(allow_hosts=GOOD if allow is None else allow, timeout=2, retry_backoff_s=0)
    settings = DownloadConfig(**(base | cfg))
    return GuardedFetcher(settings, CachingResolver.from_settings(settings, dns))


def _get(fetcher: GuardedFetcher, url: str, retries: int = 0) -> str | None:
    _, stream, error = fetcher((0, url), retries=retries, user_agent_token=None, directives=None)
    assert (stream is None) is (error is not None)
    return error


def _url(server, host: str, path: str) -> str:
    return f"http://{host}:{server.port}{path}"


def test_many_urls_one_lookup_per_host(server) -> None:
    dns = FakeDNS({h: ["127.0.0.1"] for h in GOOD})
    fetcher = _fetcher(dns)
    urls = [_url(server, GOOD[i % 2], f"/img/{i}.jpg") for i in range(24)]
    with ThreadPool(8) as pool:
        errors = pool.map(lambda u: _get(fetcher, u), urls)
    assert errors == [None] * 24
    assert dns.calls == {h: 1 for h in GOOD}


@pytest.mark.parametrize(
    "answer", [["93.184.216.34", "10.0.0.5"], ["192.168.1.1"], ["127.0.0.1"], ["::ffff:127.0.0.1"]]
)
def test_every_resolved_address_is_checked_also_from_the_cache(server, connections, answer) -> None:
    dns = FakeDNS({"mixed.example": answer})
    fetcher = _fetcher(dns, allow=[])
    for _ in range(3):
        error = _get(fetcher, _url(server, "mixed.example", "/img/1.jpg"))
        assert error is not None and error.startswith("refused_host: mixed.example -> ")
    assert dns.calls == {"mixed.example": 1} and connections == []


def test_redirect_to_a_name_with_a_private_address_is_refused(server, connections) -> None:
    dns = FakeDNS({"img-a.localhost": ["127.0.0.1"], "internal.example": ["10.1.2.3"]})
    error = _get(_fetcher(dns), _url(server, "img-a.localhost", "/redirect/internal"))
    assert error is not None and error.startswith("redirect_refused: http://internal.example/a.jpg")
    assert set(connections) == {"127.0.0.1"} and dns.calls["internal.example"] == 1


def test_a_hung_resolver_cannot_hold_a_fetch_past_total_timeout(fake_dns: FakeDNS) -> None:
    fake_dns.answers["hung.example"] = HANG
    fetcher = _fetcher(fake_dns, total_timeout=0.5, dns_timeout_s=60)
    t0 = time.monotonic()
    error = _get(fetcher, "http://hung.example/a.jpg", retries=2)
    elapsed = time.monotonic() - t0
    assert error == "dns_transient: lookup of hung.example still running at the fetch deadline"
    assert 0.45 <= elapsed < 3.0, elapsed  # one attempt: a DNS failure is not retried in-run


def test_dns_timeout_ends_a_lookup_before_the_total_timeout(fake_dns: FakeDNS) -> None:
    fake_dns.answers["hung.example"] = HANG
    fetcher = _fetcher(fake_dns, total_timeout=30, dns_timeout_s=0.3)
    t0 = time.monotonic()
    assert _get(fetcher, "http://hung.example/a.jpg") == (
        "dns_transient: lookup of hung.example not answered within 0.3s"
    )
    assert time.monotonic() - t0 < 3.0
    t1 = time.monotonic()
    assert _get(fetcher, "http://hung.example/b.jpg").startswith("dns_transient: ")
    assert time.monotonic() - t1 < 0.2  # the next URL of that host does not wait again


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (socket.EAI_NONAME, "dns_failed"),
        (socket.EAI_NODATA, "dns_failed"),
        (socket.EAI_AGAIN, "dns_transient"),
    ],
)
def test_dns_failures_are_classified_and_looked_up_once(answer: int, expected: str) -> None:
    dns = FakeDNS({"gone.example": answer})
    fetcher = _fetcher(dns, retry_backoff_s=5)
    t0 = time.monotonic()
    for path in ("/a.jpg", "/b.jpg"):
        error = _get(fetcher, f"http://gone.example{path}", retries=2)
        assert error is not None and error.startswith(f"{expected}: gone.example: gaierror")
    assert time.monotonic() - t0 < 2.0  # no in-run retry (its back-off would be 5 s)
    assert dns.calls == {"gone.example": 1}


@pytest.mark.parametrize(
    ("code", "expected", "requests"),
    [
        (404, "download_failed", 1),
        (410, "download_failed", 1),
        (403, "download_failed", 1),
        (400, "download_failed", 1),
        (408, "download_transient", 3),
        (429, "download_transient", 3),
        (500, "download_transient", 3),
        (503, "download_transient", 3),
    ],
)
def test_http_status_classes(server, code: int, expected: str, requests: int) -> None:
    path = f"/status/{code}"
    before = server.counts[path]
    error = _get(_fetcher(FakeDNS({GOOD[0]: ["127.0.0.1"]})), _url(server, GOOD[0], path), retries=2)
    assert error is not None and error.startswith(f"{expected}: HTTP {code} ")
    assert server.counts[path] - before == requests  # permanent: one request; transient: 1 + retries


def test_connection_refused_is_permanent() -> None:
    with socket.socket() as probe:  # a port on 127.0.0.1 that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dns = FakeDNS({GOOD[0]: ["127.0.0.1"]})
    t0 = time.monotonic()
    error = _get(_fetcher(dns, retry_backoff_s=5), f"http://{GOOD[0]}:{port}/a.jpg", retries=2)
    assert error is not None and error.startswith("download_failed: ConnectionRefusedError")
    assert time.monotonic() - t0 < 2.0  # not retried in-run (its back-off would be 5 s)


def test_prefetch_asks_for_fetchable_hosts_only_and_names_slow_ones(fake_dns: FakeDNS) -> None:
    fake_dns.answers |= {h: ["127.0.0.1"] for h in GOOD} | {"hung.example": HANG}
    urls = [f"http://{GOOD[0]}/a", f"http://{GOOD[1].upper()}:81/b", f"http://{GOOD[0]}/c", None]
    urls += ["file:///etc/passwd", "http://user@evil.example/x.jpg", "gopher://other.example/"]
    assert _fetcher(fake_dns, dns_prefetch=False).prefetch(urls) == set()
    assert fake_dns.calls == {}
    t0 = time.monotonic()
    assert _fetcher(fake_dns, dns_settle_s=0.3).prefetch(urls) == set()  # all answered: no full wait
    assert time.monotonic() - t0 < 0.25
    assert fake_dns.calls == {h: 1 for h in GOOD}
    t0 = time.monotonic()
    assert _fetcher(fake_dns, dns_settle_s=0.3).prefetch([*urls, "http://hung.example/x"]) == {"hung.example"}
    assert 0.25 <= time.monotonic() - t0 < 2.0


def test_slow_hosts_go_last_in_their_shard() -> None:
    table = pa.table(
        {"url": ["http://a/1", "http://DEAD/1", "http://b/1", "http://a/2", "http://dead/2", None]}
    )
    moved = slow_hosts_last(table, {"dead"})
    assert moved.column("url").to_pylist() == [
        "http://a/1",
        "http://b/1",
        "http://a/2",
        None,
        "http://DEAD/1",
        "http://dead/2",
    ]

"""The guarded fetcher: per-host cap, size limits, transient-only retries, error classes, img2dataset hook."""

from __future__ import annotations

import errno
import http.client
import socket
import ssl
from multiprocessing.pool import ThreadPool
from urllib.error import HTTPError, URLError

import pytest

from rs5m.config import DownloadConfig
from rs5m.pipeline.download.fetch import (
    TRANSIENT_REASONS,
    GuardedFetcher,
    GuardedTimeout,
    classify_error,
    install_hook,
)
from rs5m.pipeline.download.resolver import DNSError


def _fetch(server, path: str, retries: int = 0, **cfg) -> tuple[bool, str | None]:
    fetcher = GuardedFetcher(DownloadConfig(allow_hosts=["127.0.0.1"], timeout=2, retry_backoff_s=0, **cfg))
    _, stream, error = fetcher((0, server.url(path)), retries=retries, user_agent_token=None, directives=None)
    return stream is not None, error


@pytest.mark.parametrize("cap", [2, 6])
def test_per_host_concurrency_cap(server, cap: int) -> None:
    fetcher = GuardedFetcher(DownloadConfig(allow_hosts=["127.0.0.1"], per_host_concurrency=cap))
    server.max_inflight = 0
    rows = [(i, server.url(f"/busy/{i}")) for i in range(12)]
    with ThreadPool(8) as pool:
        results = pool.map(lambda r: fetcher(r, retries=0, user_agent_token=None, directives=None), rows)
    assert all(err is None for _, _, err in results)
    assert server.max_inflight <= cap
    assert server.max_inflight >= min(cap, 3)  # the cap, not the test, is what limits


def test_size_limits(server) -> None:
    assert _fetch(server, "/img/1.jpg", max_bytes=100)[1].startswith("response_too_large: ")
    assert _fetch(server, "/img/1.jpg", min_bytes=10**6)[1].startswith("response_too_small: ")
    assert _fetch(server, "/img/1.jpg") == (True, None)


def test_only_transient_errors_are_retried(server) -> None:
    before = dict(server.counts)
    assert _fetch(server, "/flaky/inrun", retries=2) == (True, None)
    ok, error = _fetch(server, "/404", retries=2)
    assert not ok and error == "download_failed: HTTP 404 Not Found"
    assert server.counts["/flaky/inrun"] - before.get("/flaky/inrun", 0) == 2
    assert server.counts["/404"] - before.get("/404", 0) == 1


def _http(code: int) -> HTTPError:
    return HTTPError("u", code, "status", {}, None)  # type: ignore[arg-type]


def _gai(code: int, text: str) -> URLError:
    return URLError(socket.gaierror(code, text))


# (exception as urllib / the guard raises it, expected reason); permanent ones first
CLASSES = [
    (_http(404), "download_failed"),
    (_http(410), "download_failed"),
    (_http(400), "download_failed"),
    (_http(401), "download_failed"),
    (_http(403), "download_failed"),
    (_http(451), "download_failed"),
    (URLError(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")), "download_failed"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "download_failed"),
    (URLError(ssl.SSLCertVerificationError(1, "certificate verify failed")), "download_failed"),
    (URLError("unknown url type: ftp"), "download_failed"),
    (_gai(socket.EAI_NONAME, "Name or service not known"), "dns_failed"),
    (_gai(socket.EAI_NODATA, "No address associated with hostname"), "dns_failed"),
    (URLError(DNSError("dns_failed", "nx.example: gaierror -2")), "dns_failed"),
    # transient
    (_http(408), "download_transient"),
    (_http(429), "download_transient"),
    (_http(500), "download_transient"),
    (_http(502), "download_transient"),
    (_http(503), "download_transient"),
    (_http(504), "download_transient"),
    (URLError(TimeoutError("timed out")), "download_timeout"),
    (TimeoutError(), "download_timeout"),
    (ConnectionResetError("reset"), "download_transient"),
    (URLError(ConnectionAbortedError("aborted")), "download_transient"),
    (http.client.IncompleteRead(b"x", 10), "download_transient"),
    (http.client.RemoteDisconnected("closed"), "download_transient"),
    (URLError(OSError(errno.ENETUNREACH, "Network is unreachable")), "download_transient"),
    (URLError(OSError(errno.EHOSTUNREACH, "No route to host")), "download_transient"),
    (_gai(socket.EAI_AGAIN, "Temporary failure in name resolution"), "dns_transient"),
    (_gai(socket.EAI_FAIL, "Non-recoverable failure in name resolution"), "dns_transient"),
    (URLError(DNSError("dns_transient", "lookup of slow.example not answered within 5s")), "dns_transient"),
]
PERMANENT = {"download_failed", "dns_failed"}


@pytest.mark.parametrize(("exc", "reason"), CLASSES, ids=[repr(e) for e, _ in CLASSES])
def test_classify_error(exc: BaseException, reason: str) -> None:
    assert classify_error(exc)[0] == reason
    # permanent reasons are never re-fetched by --retry-failed; every transient one is
    assert (reason in TRANSIENT_REASONS) is (reason not in PERMANENT)


def test_hook_leaves_plain_img2dataset_alone(server, connections: list[str], monkeypatch) -> None:
    import img2dataset.downloader as i2d

    monkeypatch.setenv("no_proxy", "127.0.0.1")  # plain urllib honours proxy variables; we want the server

    install_hook()
    install_hook()  # idempotent
    url = server.url("/img/2.jpg")
    _, stream, error = i2d.download_image_with_retry((0, url), 2, 0, None, None)
    assert error is None and stream is not None  # plain call: img2dataset's own fetch, no guard
    guarded = GuardedTimeout(2, GuardedFetcher(DownloadConfig()))
    _, stream, error = i2d.download_image_with_retry((0, url), guarded, 0, None, None)
    assert stream is None and error.startswith("refused_host: ")
    assert connections == ["127.0.0.1"]

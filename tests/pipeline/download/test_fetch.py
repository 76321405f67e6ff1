"""The guarded fetcher: per-host cap, size limits, transient-only retries, error classes, img2dataset hook."""

from __future__ import annotations

import socket
from multiprocessing.pool import ThreadPool
from urllib.error import HTTPError, URLError

import pytest

from rs5m.config import DownloadConfig
from rs5m.pipeline.download.fetch import GuardedFetcher, GuardedTimeout, classify_error, install_hook


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


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (HTTPError("u", 429, "Too Many Requests", {}, None), "download_transient"),
        (HTTPError("u", 503, "Unavailable", {}, None), "download_transient"),
        (HTTPError("u", 403, "Forbidden", {}, None), "download_failed"),
        (URLError(TimeoutError("timed out")), "download_timeout"),
        (TimeoutError(), "download_timeout"),
        (ConnectionResetError("reset"), "download_transient"),
        (URLError(ConnectionRefusedError(111, "refused")), "download_failed"),
        (URLError(socket.gaierror(-2, "Name or service not known")), "download_failed"),
    ],
)
def test_classify_error(exc: BaseException, reason: str) -> None:
    assert classify_error(exc)[0] == reason


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

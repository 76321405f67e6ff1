"""Egress rules: tricky URL forms, the allowlist, and the guarded opener refusing before connecting.

Only literal IPs and ``localhost`` are ever resolved here; the only connections go to 127.0.0.1.
"""

from __future__ import annotations

import socket
import urllib.request
from urllib.error import URLError

import pytest

from rs5m.pipeline.download.netguard import (
    REDIRECT_REFUSED,
    REFUSED_HOST,
    REFUSED_URL,
    RefusedError,
    address_problem,
    build_guarded_opener,
    check_url,
    guarded_connect,
)

LOOPBACK_FORMS = [
    "http://127.0.0.1/x.jpg",
    "http://2130706433/x.jpg",
    "http://0x7f.1/x.jpg",
    "http://127.1/x.jpg",
    "http://0177.0.0.1/x.jpg",
    "http://017700000001/x.jpg",
    "http://[::1]/x.jpg",
    "http://[::ffff:127.0.0.1]/x.jpg",
    "http://[::ffff:7f00:1]/x.jpg",
    "http://[2002:7f00:1::]/x.jpg",
    "http://localhost/x.jpg",
    "http://LocalHost:8080/x.jpg",
    "HTTPS://127.0.0.1/x.jpg",
]
BLOCKED_RANGES = [
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://[ff02::1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://100.64.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://198.18.0.1/",
]
BAD_FORMS = [
    "file:///etc/passwd",
    "ftp://8.8.8.8/x",
    "gopher://8.8.8.8/",
    "data:image/png;base64,AAAA",
    "javascript:alert(1)",
    "http://evil@127.0.0.1/x.jpg",
    "http://user:pw@8.8.8.8/x.jpg",
    "http://127.0.0.1:80@8.8.8.8/",
    "http:///nohost.jpg",
    "http://8.8.8.8:99999/x",
    "http://[::1/x",
]


@pytest.mark.parametrize("url", LOOPBACK_FORMS + BLOCKED_RANGES)
def test_non_public_hosts_are_refused(url: str) -> None:
    refusal = check_url(url)
    assert refusal is not None and refusal.reason == REFUSED_HOST, (url, refusal)


@pytest.mark.parametrize("url", BAD_FORMS)
def test_bad_forms_are_refused(url: str) -> None:
    refusal = check_url(url, ["127.0.0.1", "8.8.8.8"])
    assert refusal is not None and refusal.reason == REFUSED_URL, (url, refusal)


@pytest.mark.parametrize(
    "url", ["http://8.8.8.8/x.jpg", "https://1.1.1.1:8443/a", "http://[2606:4700::1111]/"]
)
def test_public_literals_pass(url: str) -> None:
    assert check_url(url) is None


@pytest.mark.parametrize(
    ("url", "allow", "ok"),
    [
        ("http://127.0.0.1:8080/x", ["127.0.0.1"], True),
        ("http://127.0.0.1:8080/x", ["127.0.0.1:8080"], True),
        ("http://127.0.0.1:8080/x", ["127.0.0.1:9000"], False),
        ("http://127.1:8080/x", ["127.0.0.1"], False),
        ("http://2130706433/x", ["127.0.0.1"], False),
        ("http://[::ffff:127.0.0.1]/x", ["127.0.0.1"], False),
        ("http://localhost/x", ["LOCALHOST"], True),
        ("http://localhost/x", ["127.0.0.1"], False),
        ("http://[::1]:81/x", ["[::1]:81"], True),
        ("http://[::1]:81/x", ["::1"], True),
        ("http://evil@127.0.0.1/x", ["127.0.0.1"], False),
    ],
)
def test_allowlist_is_exact(url: str, allow: list[str], ok: bool) -> None:
    assert (check_url(url, allow) is None) is ok


def test_unresolved_check_never_looks_up(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lookup(*args: object, **kwargs: object) -> None:
        raise AssertionError("getaddrinfo called")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    assert check_url("http://images.example.org/a.jpg", resolve=False) is None
    assert check_url("http://10.0.0.1/a.jpg", resolve=False).reason == REFUSED_HOST
    assert check_url("http://u@8.8.8.8/", resolve=False).reason == REFUSED_URL


def test_address_problem_names_the_range() -> None:
    assert "loopback" in address_problem("127.0.0.1")
    assert "link-local" in address_problem("169.254.169.254")
    assert "multicast" in address_problem("224.0.0.251")
    assert "embeds" in address_problem("::ffff:192.168.0.1")
    assert address_problem("8.8.4.4") is None


@pytest.mark.parametrize("host", ["10.0.0.1", "169.254.169.254", "127.0.0.1", "::1"])
def test_guarded_connect_refuses_before_connecting(host: str, connections: list[str]) -> None:
    with pytest.raises(RefusedError) as info:
        guarded_connect((host, 80), 1.0)
    assert info.value.refusal.reason == REFUSED_HOST
    assert connections == []


def test_opener_follows_allowed_redirect(server, connections: list[str]) -> None:
    opener = build_guarded_opener(["127.0.0.1"])
    with opener.open(server.url("/redirect/5"), timeout=5) as response:
        assert response.read()[:2] == b"\xff\xd8"
    assert set(connections) == {"127.0.0.1"}


@pytest.mark.parametrize("target", ["private", "metadata"])
def test_opener_refuses_redirect_into_blocked_range(server, connections: list[str], target: str) -> None:
    opener = build_guarded_opener(["127.0.0.1"])
    with pytest.raises(RefusedError) as info:
        opener.open(server.url(f"/redirect/{target}"), timeout=5)
    assert info.value.refusal.reason == REDIRECT_REFUSED
    assert set(connections) == {"127.0.0.1"}


def test_opener_refuses_loopback_without_allowlist(server, connections: list[str]) -> None:
    before = server.total()
    with pytest.raises(URLError) as info:
        build_guarded_opener().open(server.url("/img/1.jpg"), timeout=5)
    assert isinstance(info.value.reason, RefusedError)
    assert connections == [] and server.total() == before


def test_opener_has_no_file_handler(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    with pytest.raises(URLError):
        build_guarded_opener(["127.0.0.1"]).open(urllib.request.Request(secret.as_uri()))

"""Fuzzed URLs through the downloader's egress rules (``rs5m.pipeline.download.netguard``).

Properties:
- ``check_url(url, resolve=False)`` never raises and returns ``None`` or a ``Refusal`` with a known reason,
  for any text (schemes, IDNA hosts, userinfo, ports, IPv6, numeric hosts, very long URLs).
- An http(s) URL whose host is a literal non-public address (private, loopback, link-local, CGNAT,
  unspecified, multicast, reserved, IPv4-mapped or 6to4 IPv6) is refused ``refused_host`` unless the
  host or ``host:port`` is allowlisted exactly; a near-miss allowlist entry does not help.
- Numeric host forms (``2130706433``, ``0x7f.1``, ``127.1``, octal) of such addresses are refused once
  resolved (the resolver expands them locally; no network).
- A redirect to any of those is refused by the guarded opener's redirect handler (``redirect_refused``).
- Userinfo and non-http(s) schemes are always ``refused_url``.
"""

from __future__ import annotations

import ipaddress
import urllib.request

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rs5m.pipeline.download.netguard import (
    REDIRECT_REFUSED,
    REFUSED_HOST,
    REFUSED_URL,
    Refusal,
    RefusedError,
    _GuardedRedirectHandler,
    check_url,
    normalise_allowlist,
)
from tests.faults import fuzz_settings, record

_BLOCKED_NETS = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "0.0.0.0/8",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
    "ff00::/8",
]


@st.composite
def blocked_ip(draw: st.DrawFn) -> str:
    """A literal non-public address, sometimes hidden in IPv4-mapped or 6to4 IPv6."""
    net = ipaddress.ip_network(draw(st.sampled_from(_BLOCKED_NETS)))
    addr = net[draw(st.integers(0, min(net.num_addresses - 1, 2**32)))]
    if isinstance(addr, ipaddress.IPv4Address):
        wrap = draw(st.sampled_from(["plain", "plain", "mapped", "6to4"]))
        if wrap == "mapped":
            return f"::ffff:{addr}"
        if wrap == "6to4":
            return str(ipaddress.IPv6Address((0x2002 << 112) | (int(addr) << 80)))
    return str(addr)


def _netloc(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


_schemes = st.sampled_from(
    ["http", "https", "HTTP", "HtTpS", "ftp", "file", "gopher", "javascript", "data", "ws", "", "http\x00"]
)
_hosts = st.one_of(
    st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z]{2,5}){0,2}", fullmatch=True),
    st.text(min_size=1, max_size=20),  # IDNA / arbitrary unicode
    st.sampled_from(["xn--nxasmq6b.com", "\u4f8b\u3048.jp", "b\u00fccher.de", "[::1", "[zz]", "..", "%2e"]),
    blocked_ip().map(_netloc),
    st.ip_addresses().map(lambda a: _netloc(str(a))),
)
_ports = st.one_of(
    st.just(""), st.integers(0, 70_000).map(lambda p: f":{p}"), st.sampled_from([":", ":x", ":-1"])
)


@st.composite
def any_url(draw: st.DrawFn) -> str:
    """Assembled URLs with odd parts, or arbitrary text."""
    userinfo = draw(st.sampled_from(["", "", "user@", "u:p@", "@", "a%40b@"]))
    path = draw(st.one_of(st.text(max_size=30), st.sampled_from(["/" + "a" * 70_000, "/x?y=1#z", "\\..\\"])))
    url = f"{draw(_schemes)}://{userinfo}{draw(_hosts)}{draw(_ports)}/{path}"
    return draw(st.one_of(st.just(url), st.just(url), st.text(max_size=60)))


def _assert_result(result: object) -> None:
    assert result is None or (isinstance(result, Refusal) and result.reason in (REFUSED_URL, REFUSED_HOST))


@fuzz_settings(300)
@given(
    url=any_url(), allow=st.lists(st.sampled_from(["example.com", "10.0.0.1", "[::1]:8080", " "]), max_size=2)
)
def test_check_url_never_raises(url: str, allow: list[str]) -> None:
    """Any text gives ``None`` or a ``Refusal``; userinfo and other schemes are refused_url."""
    try:
        result = check_url(url, allow, resolve=False)
    except Exception as exc:
        record("urls", handled=False, crash=True, detail=f"{type(exc).__name__}: {exc}"[:200])
        raise
    record("urls", handled=True)
    _assert_result(result)
    low = url.lower()
    if not (low.startswith("http://") or low.startswith("https://")):
        assert result is not None and result.reason == REFUSED_URL


@fuzz_settings(200)
@given(
    scheme=st.sampled_from(["http", "https"]),
    ip=blocked_ip(),
    port=st.one_of(st.none(), st.integers(1, 65_535)),
    allow_kind=st.sampled_from(["none", "host", "host:port", "near-miss", "other-port"]),
)
def test_blocked_literals_refused_unless_allowlisted(
    scheme: str, ip: str, port: int | None, allow_kind: str
) -> None:
    """A non-public literal host is refused_host unless that host or host:port is on the allowlist."""
    host = _netloc(ip)
    url = f"{scheme}://{host}{'' if port is None else f':{port}'}/img.jpg"
    eff_port = port if port is not None else (80 if scheme == "http" else 443)
    allow = {
        "none": [],
        "host": [host.upper()],
        "host:port": [f"{host}:{eff_port}"],
        "near-miss": [f"{host}.example.com", f"x{host}"],
        "other-port": [f"{host}:{eff_port % 65_535 + 1}"],
    }[allow_kind]
    result = check_url(url, allow, resolve=False)
    allowed = allow_kind in ("host", "host:port")
    ok = (result is None) if allowed else (result is not None and result.reason == REFUSED_HOST)
    record("urls", handled=ok, detail="" if ok else url)
    assert ok, (url, allow, result)


def _numeric_forms(ip: ipaddress.IPv4Address) -> list[str]:
    n = int(ip)
    a, b, c, d = ip.packed
    return [str(n), hex(n), f"{a}.{(b << 16) | (c << 8) | d}", f"0{a:o}.{b}.{c}.{d}", f"{a:#x}.{b}.{c}.{d}"]


@fuzz_settings(40)
@given(data=st.data())
def test_numeric_host_forms_refused_after_resolving(data: st.DataObject) -> None:
    """``2130706433``, ``0x7f000001``, ``127.1``-style and octal forms of blocked IPv4 addresses are
    refused once the (local, numeric) resolver has expanded them."""
    net = ipaddress.ip_network(data.draw(st.sampled_from(_BLOCKED_NETS[:7])))
    ip = net[data.draw(st.integers(0, net.num_addresses - 1))]
    form = data.draw(st.sampled_from(_numeric_forms(ip)))
    result = check_url(f"http://{form}/a.jpg")
    ok = result is not None and result.reason == REFUSED_HOST
    record("urls", handled=ok, detail="" if ok else form)
    assert ok, (form, str(ip), result)


@fuzz_settings(60)
@given(ip=blocked_ip(), scheme=st.sampled_from(["http", "https"]), port=st.integers(1, 65_535))
def test_redirect_into_blocked_range_refused(ip: str, scheme: str, port: int) -> None:
    """The guarded opener's redirect handler refuses every hop to a non-public literal address."""
    handler = _GuardedRedirectHandler(normalise_allowlist([]), max_redirects=5)
    req = urllib.request.Request("https://example.com/a.jpg")
    newurl = f"{scheme}://{_netloc(ip)}:{port}/next"
    with pytest.raises(RefusedError) as info:
        handler.redirect_request(req, None, 302, "Found", {}, newurl)
    record("urls", handled=info.value.refusal.reason == REDIRECT_REFUSED)
    assert info.value.refusal.reason == REDIRECT_REFUSED

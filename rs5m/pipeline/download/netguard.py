"""Egress rules for the downloader: which URLs may be fetched, and a urllib opener that enforces them.

Contract:
- Only ``http`` and ``https`` URLs with a host and no userinfo (``user@host``) are fetchable;
  anything else is refused with ``refused_url``.
- A host is fetchable when it is on the allowlist (exact ``host`` or ``host:port``, case-insensitive,
  IPv6 written as ``[::1]:port``) or when *every* address it resolves to is a public unicast address.
  Private, loopback, link-local, multicast, reserved, unspecified and shared (CGNAT) addresses are
  refused with ``refused_host``, also when hidden as IPv4-mapped / 6to4 IPv6 or as numeric host forms
  such as ``2130706433``, ``0x7f.1`` or ``127.1`` (the resolver expands those; the allowlist does not).
- The opener from ``build_guarded_opener`` resolves the host once, checks every address, and connects
  only to a checked address (no second lookup, so DNS rebinding between check and connect is moot).
  Names are resolved by its ``resolver(host, port)`` when given (the fetcher passes its per-process
  cache, ``rs5m.pipeline.download.resolver``, bound to the fetch deadline), else by ``getaddrinfo``;
  either way every address of the answer is checked, on every connection and every redirect hop.
  Every redirect hop is checked before it is followed; a refused hop raises ``redirect_refused``.
  Its ``on_connect`` hook, when given, sees every connected socket (before any TLS handshake), so a
  caller can enforce a deadline on the whole exchange (``rs5m.pipeline.download.fetch`` does). It has no
  proxy, file,
  ftp or data handlers: environment proxies are ignored on purpose, since the check must see the real
  destination.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.request
from collections.abc import Callable, Iterable
from functools import partial
from http.client import HTTPConnection, HTTPSConnection
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from rs5m.core.schema import Reason

REFUSED_URL = Reason.REFUSED_URL.value
REFUSED_HOST = Reason.REFUSED_HOST.value
REDIRECT_REFUSED = Reason.REDIRECT_REFUSED.value

_SCHEMES = {"http": 80, "https": 443}
SocketHook = Callable[[socket.socket], None]
Resolve = Callable[[str, int], list[tuple]]  # (host, port) -> getaddrinfo entries, or raises OSError


class Refusal(NamedTuple):
    """Why a URL may not be fetched: a reason code and a human-readable detail."""

    reason: str
    detail: str


class RefusedError(OSError):
    """Raised inside the guarded opener when a connection or redirect is refused."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(f"{refusal.reason}: {refusal.detail}")
        self.refusal = refusal


def normalise_allowlist(allow_hosts: Iterable[str]) -> frozenset[str]:
    """Lower-case allowlist entries; ``host`` allows every port, ``host:port`` one port."""
    return frozenset(h.strip().lower() for h in allow_hosts if h.strip())


def is_allowed_host(host: str, port: int, allow: frozenset[str]) -> bool:
    """True when ``host`` (no brackets) or ``host:port`` is on the normalised allowlist."""
    host = host.lower()
    shown = f"[{host}]" if ":" in host else host
    return host in allow or shown in allow or f"{shown}:{port}" in allow


def address_problem(ip: str) -> str | None:
    """Return why connecting to the literal address ``ip`` is refused, or ``None`` if it is public."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return f"unparsable address {ip!r}"
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = addr.ipv4_mapped or addr.sixtofour
        if embedded is not None:
            inner = address_problem(str(embedded))
            return f"{ip} embeds {inner}" if inner else None
    for flag in ("loopback", "link_local", "multicast", "unspecified", "private", "reserved"):
        if getattr(addr, f"is_{flag}"):
            return f"{ip} is {flag.replace('_', '-')}"
    if not addr.is_global:
        return f"{ip} is not globally routable"
    return None


def split_url(url: str) -> tuple[str, str, int] | Refusal:
    """Return ``(scheme, host, port)`` of a fetchable URL, or the ``refused_url`` refusal."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return Refusal(REFUSED_URL, f"unparsable URL: {exc}")
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        return Refusal(REFUSED_URL, f"scheme {scheme!r} is not http(s)")
    if "@" in parts.netloc:
        return Refusal(REFUSED_URL, "URL carries userinfo (user@host)")
    host = parts.hostname or ""
    if not host:
        return Refusal(REFUSED_URL, "URL has no host")
    return scheme, host, port if port is not None else _SCHEMES[scheme]


def _getaddrinfo(host: str, port: int) -> list[tuple]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def resolve_checked(
    host: str, port: int, allow: frozenset[str], resolver: Resolve | None = None
) -> list[tuple] | Refusal:
    """Resolve ``host`` and return its ``getaddrinfo`` entries if every address may be contacted.

    Allowlisted hosts are resolved without the address check. A host that does not resolve raises
    the resolver's ``OSError`` (``socket.gaierror``, or ``DNSError`` from the cache): an ordinary
    download failure, not a refusal.
    """
    infos = (resolver or _getaddrinfo)(host, port)
    if is_allowed_host(host, port, allow):
        return infos
    for info in infos:
        problem = address_problem(str(info[4][0]))
        if problem:
            return Refusal(REFUSED_HOST, f"{host} -> {problem}")
    return infos


def check_url(
    url: str, allow_hosts: Iterable[str] = (), *, resolve: bool = True, resolver: Resolve | None = None
) -> Refusal | None:
    """Return why ``url`` may not be fetched, or ``None`` if it may.

    With ``resolve=False`` only the URL's form and literal-IP hosts are checked (no lookup); else the
    host is resolved by ``resolver`` (default ``getaddrinfo``).
    """
    allow = allow_hosts if isinstance(allow_hosts, frozenset) else normalise_allowlist(allow_hosts)
    parsed = split_url(url)
    if isinstance(parsed, Refusal):
        return parsed
    _, host, port = parsed
    if is_allowed_host(host, port, allow):
        return None
    if not resolve:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return None
        problem = address_problem(host)
        return Refusal(REFUSED_HOST, problem) if problem else None
    try:
        result = resolve_checked(host, port, allow, resolver)
    except OSError:
        return None  # unresolvable is a download failure, reported by the fetch itself
    return result if isinstance(result, Refusal) else None


def guarded_connect(
    address: tuple[str, int],
    timeout: float | object = socket._GLOBAL_DEFAULT_TIMEOUT,
    source_address: tuple[str, int] | None = None,
    *,
    allow: frozenset[str] = frozenset(),
    resolver: Resolve | None = None,
) -> socket.socket:
    """Drop-in for ``socket.create_connection`` that connects only to checked addresses."""
    host, port = address
    result = resolve_checked(host, port, allow, resolver)
    if isinstance(result, Refusal):
        raise RefusedError(result)
    last: OSError | None = None
    for info in result:
        try:
            return socket.create_connection((info[4][0], port), timeout, source_address)
        except OSError as exc:
            last = exc
    raise last or OSError(f"no address for {host}")


def _connector(
    allow: frozenset[str], on_connect: SocketHook | None, resolver: Resolve | None
) -> Callable[..., socket.socket]:
    def connect(*args: Any, **kwargs: Any) -> socket.socket:
        sock = guarded_connect(*args, allow=allow, resolver=resolver, **kwargs)
        if on_connect is not None:
            try:
                on_connect(sock)
            except BaseException:
                sock.close()
                raise
        return sock

    return connect


class _GuardedHTTPConnection(HTTPConnection):
    def __init__(
        self, *args, allow: frozenset[str], on_connect: SocketHook | None, resolver: Resolve | None, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connector(allow, on_connect, resolver)


class _GuardedHTTPSConnection(HTTPSConnection):
    # HTTPSConnection.connect() calls HTTPConnection.connect(), which uses _create_connection, and
    # then wraps the socket with server_hostname=self.host, so SNI and certificate checks still
    # use the name while the TCP connection goes to the checked address.
    def __init__(
        self, *args, allow: frozenset[str], on_connect: SocketHook | None, resolver: Resolve | None, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connector(allow, on_connect, resolver)


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(
        self, allow: frozenset[str], on_connect: SocketHook | None, resolver: Resolve | None
    ) -> None:
        super().__init__()
        self._allow, self._on_connect, self._resolver = allow, on_connect, resolver

    def http_open(self, req: urllib.request.Request):
        conn = partial(
            _GuardedHTTPConnection, allow=self._allow, on_connect=self._on_connect, resolver=self._resolver
        )
        return self.do_open(conn, req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(
        self, allow: frozenset[str], on_connect: SocketHook | None, resolver: Resolve | None
    ) -> None:
        super().__init__()
        self._allow, self._on_connect, self._resolver = allow, on_connect, resolver

    def https_open(self, req: urllib.request.Request):
        conn = partial(
            _GuardedHTTPSConnection, allow=self._allow, on_connect=self._on_connect, resolver=self._resolver
        )
        return self.do_open(conn, req, context=self._context)


class _GuardedRedirectHandler(urllib.request.HTTPRedirectHandler):
    def __init__(self, allow: frozenset[str], max_redirects: int, resolver: Resolve | None = None) -> None:
        super().__init__()
        self._allow, self._resolver = allow, resolver
        self.max_redirections = max_redirects

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        refusal = check_url(newurl, self._allow, resolver=self._resolver)
        if refusal is not None:
            raise RefusedError(Refusal(REDIRECT_REFUSED, f"{newurl}: {refusal.reason}: {refusal.detail}"))
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def build_guarded_opener(
    allow_hosts: Iterable[str] = (),
    *,
    max_redirects: int = 5,
    on_connect: SocketHook | None = None,
    resolver: Resolve | None = None,
) -> urllib.request.OpenerDirector:
    """Return an opener for http(s) only that applies the egress rules to every connection and hop.

    ``on_connect(sock)`` is called with each newly connected TCP socket (every redirect hop's too),
    before TLS; if it raises, the socket is closed and the error ends the request. ``resolver(host,
    port)`` resolves every host (default ``getaddrinfo``); its errors end the request.
    """
    allow = normalise_allowlist(allow_hosts)
    opener = urllib.request.OpenerDirector()
    for handler in (
        _GuardedHTTPHandler(allow, on_connect, resolver),
        _GuardedHTTPSHandler(allow, on_connect, resolver),
        urllib.request.HTTPDefaultErrorHandler(),
        _GuardedRedirectHandler(allow, max_redirects, resolver),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.UnknownHandler(),
    ):
        opener.add_handler(handler)
    return opener

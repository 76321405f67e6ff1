"""Is the Dask scheduler a build names reachable? Checked before the build's version exists.

Both ``rs5m build --dask-address`` and a deployment run of ``build-rs5m`` with ``dask_address`` call it
before anything is written: ``distributed``'s Client would otherwise wait for ever on a port that
accepts and never answers, with a ``running`` version left behind. It lives with the tasks because
``rs5m/`` never imports ``distributed``.
"""

from __future__ import annotations

import asyncio
import socket


class SchedulerUnreachable(ValueError):
    """No Dask scheduler answers at the address given: one line naming it and what to do."""


CONNECT_TIMEOUT_S = 10.0  # a scheduler that does not answer its handshake in this time is "unreachable"
_HINT = "start it (`dask scheduler`) or leave out --dask-address / dask.address to use a local cluster"


def check_scheduler(address: str, timeout: float | None = None) -> None:
    """Connect to the Dask scheduler at ``address`` and close again; ``SchedulerUnreachable`` naming
    what failed.

    ``timeout``: seconds for the connection and the handshake (default ``CONNECT_TIMEOUT_S``).
    """
    from distributed.comm import parse_address, parse_host_port

    timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location)
    except (ValueError, TypeError) as exc:
        said = f"--dask-address {address!r} is not an address like tcp://host:8786 ({exc})"
        raise SchedulerUnreachable(said) from None
    if not 0 < int(port) < 65536:
        raise SchedulerUnreachable(f"--dask-address {address!r}: port {port} is outside 1..65535")
    if scheme in ("tcp", "tls"):
        _probe(address, host, int(port), timeout)
    _handshake(address, timeout)


def _probe(address: str, host: str, port: int, timeout: float) -> None:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except socket.gaierror as exc:
        said = f"unknown host {host!r} ({exc.strerror})"
    except TimeoutError:
        said = f"no answer in {timeout:g} s"
    except OSError as exc:
        said = (exc.strerror or str(exc)).lower()
    else:
        return
    raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {address}: {said}; {_HINT}")


async def _identity(address: str, timeout: float) -> dict:
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        await comm.close()


def _handshake(address: str, timeout: float) -> None:
    # distributed's Client waits for ever on a port that accepts but never answers: a bounded handshake
    try:
        info = asyncio.run(asyncio.wait_for(_identity(address, timeout), timeout))
    except Exception as exc:  # OSError, TimeoutError, distributed's CommClosedError...
        said = " ".join(str(exc).split()) or type(exc).__name__
        raise SchedulerUnreachable(f"no Dask scheduler answers at {address} ({said}); {_HINT}") from None
    kind = info.get("type") if isinstance(info, dict) else None
    if kind != "Scheduler":
        said = f"{address} answers, but it is a Dask {kind or 'peer'}, not a scheduler"
        raise SchedulerUnreachable(f"{said}; {_HINT}")

"""A watchdog for one fetch attempt: it ends the attempt's sockets when the attempt's time is up.

Used by ``rs5m.pipeline.download.fetch``: the guarded opener's ``on_connect`` hook hands each connected
socket to ``Deadline.watch``, and name lookups wait at most until ``Deadline.ends_at``.
"""

from __future__ import annotations

import socket
import threading
import time


class Deadline:
    """A watchdog for one fetch attempt: ``seconds`` after creation it shuts down every watched socket.

    ``watch(sock)`` is the opener's ``on_connect`` hook. It keeps a duplicate descriptor of the socket:
    ``shutdown`` acts on the connection, not the descriptor, so shutting the duplicate down ends every
    blocked or later read on the original (plain or TLS-wrapped), and the duplicate is closed only here,
    so the watchdog can never hit a reused descriptor. ``expired`` tells whether it fired; ``close()``
    (idempotent) stops the timer and releases the duplicates. Use it as a context manager.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends_at = time.monotonic() + seconds  # for waits that are not on a socket (name lookups)
        self.expired = False
        self._closed = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.name = "rs5m-fetch-deadline"
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down once the deadline passes (at once if it already has)."""
        dup = sock.dup()
        with self._lock:
            if not self._closed:
                self._socks.append(dup)
                if self.expired:
                    _shutdown(dup)
                return
        dup.close()

    def _expire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.expired = True
            for sock in self._socks:
                _shutdown(sock)

    def close(self) -> None:
        """Stop the watchdog and close the duplicate descriptors."""
        self._timer.cancel()
        with self._lock:
            self._closed = True
            socks, self._socks = self._socks, []
        for sock in socks:
            sock.close()

    def __enter__(self) -> Deadline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by the peer: nothing left to stop
        pass

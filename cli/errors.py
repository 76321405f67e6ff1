"""Any exception as one line for the user, and the exit status that goes with it.

Bad input (a ``ValueError``, an ``OSError``, a ``CliError``) exits with status 2 and its own message;
anything else is a bug: status 1, "internal error", and where the traceback went. Messages are folded
onto one line (a multi-line message, a pydantic validation error) and cut at ``MAX_CHARS``.
"""

from __future__ import annotations

import errno
from pathlib import Path

MAX_CHARS = 1000  # a longer message is cut (--debug prints it whole)
CUT = "… (cut: --debug prints it whole)"

# errno -> what the user is told; every one means "make room (or raise the limit), then rerun"
DISK_FULL = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "no space left on device (disk quota exceeded)",
    errno.EFBIG: "no space left on device (file too large for the file system or the ulimit -f limit)",
}
# errno -> a hint after "<what the OS said>: <path>"
HINTS = {
    errno.EACCES: "check its permissions (the data root must be writable by you)",
    errno.EPERM: "check its permissions (the data root must be writable by you)",
    errno.EROFS: "the file system is read-only: choose a writable data root (--root)",
}


class CliError(Exception):
    """An error to show the user as one line, without a traceback."""


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes / contexts, outermost first (cycles cut)."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not e for e in out):
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def disk_full_message(exc: BaseException) -> str | None:
    """One line for a disk-full ``OSError`` (``ENOSPC``, ``EDQUOT``, ``EFBIG``) in ``exc`` or its causes.

    Names the file being written and what to do; ``None`` when no such error is in the chain.
    """
    for cur in chain(exc):
        if isinstance(cur, OSError) and cur.errno in DISK_FULL:
            where = f"writing {cur.filename}" if cur.filename else "(the file was not reported)"
            return (
                f"{DISK_FULL[cur.errno]} {where}: free space there and rerun the same command "
                "(finished stages are not redone)"
            )
    return None


def one_line(text: str) -> str:
    """``text`` on one line: its lines joined by ``"; "`` (by a space after a line ending in ``:``), every
    run of whitespace as one space, other control characters escaped (``\\x0f``); cut at ``MAX_CHARS``
    with a note that ``--debug`` prints it whole."""
    out = ""
    for line in (" ".join(raw.split()) for raw in text.splitlines()):
        if line:
            out += line if not out else (" " if out.endswith(":") else "; ") + line
    flat = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in out)
    return flat if len(flat) <= MAX_CHARS else flat[: MAX_CHARS - len(CUT)] + CUT


def is_user_error(exc: BaseException) -> bool:
    """Bad input or a broken environment (exit 2), as opposed to a bug (exit 1)."""
    return isinstance(exc, CliError | ValueError | OSError | UnicodeError)


def _validation(exc: BaseException) -> str | None:
    errors = getattr(exc, "errors", None)
    if type(exc).__name__ != "ValidationError" or not callable(errors):
        return None
    parts = []
    for err in errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
        parts.append(f"{loc}: {err.get('msg', '')}")
    title = getattr(exc, "title", "settings")
    return f"invalid {title}: " + "; ".join(parts)


def _os_error(exc: OSError) -> str:
    if not exc.strerror:
        return f"{type(exc).__name__}: {exc}" if type(exc) is OSError else str(exc)
    if exc.filename is None:
        return f"{exc.strerror[:1].lower()}{exc.strerror[1:]} (the file was not reported)"
    where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 else "")
    text = f"{exc.strerror.lower()}: {where}"
    hint = HINTS.get(exc.errno or 0)
    if hint and exc.errno in (errno.EACCES, errno.EPERM) and Path(str(exc.filename)).is_dir():
        hint = "the folder is not writable by you: choose another data root (--root) or fix its permissions"
    return f"{text} ({hint})" if hint else text


def describe(exc: BaseException) -> str:
    """The one line shown for ``exc`` (without the ``rs5m <command>: error:`` prefix)."""
    full = disk_full_message(exc)
    if full is not None:
        return full
    validation = _validation(exc)
    if validation is not None:
        return one_line(validation)
    if isinstance(exc, OSError):
        return one_line(_os_error(exc))
    text = str(exc).strip()
    if isinstance(exc, CliError | ValueError):
        return one_line(text or type(exc).__name__)
    return one_line(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def exit_status(exc: BaseException) -> int:
    """2 for bad input (a full disk included), 1 for a bug."""
    return 2 if is_user_error(exc) or disk_full_message(exc) is not None else 1

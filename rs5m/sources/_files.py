"""Opening input files in place: what a file is (from its first bytes), compressed streams, archive
members (zip, tar, tar.gz) and byte ranges of plain text aligned to line starts.

Compression of a single stream is taken from the name (``.gz``, ``.bz2``, ``.xz``), as before; the
container formats are recognised from their magic bytes (SQLite, parquet, zip) or tar header, so a
renamed file is still read as what it is.
"""

from __future__ import annotations

import bz2
import fnmatch
import gzip
import lzma
import os
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from rs5m.sources.base import SourceFormatError

SQLITE_MAGIC = b"SQLite format 3\x00"
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_STREAM_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, tarfile.TarError)


def sniff(path: str) -> str:
    """``sqlite``, ``parquet``, ``zip``, ``tar`` (plain or compressed) or ``text`` (plain or compressed
    by suffix). ``SourceFormatError`` when the path cannot be read (missing, a directory...)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise SourceFormatError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if path.lower().endswith(_TAR_SUFFIXES) or head[257:262] == b"ustar":
        return "tar"
    return "text"


def compression(path: str) -> str:
    """The single-stream compression named by the file's suffix: ``gz``, ``bz2``, ``xz`` or ``""``."""
    low = path.lower()
    for suffix in ("gz", "bz2", "xz"):
        if low.endswith("." + suffix):
            return suffix
    return ""


def open_binary(path: str, buffer: int = 1 << 20) -> IO[bytes]:
    """Open ``path`` for binary reading, decompressing ``.gz`` / ``.bz2`` / ``.xz`` by suffix."""
    kind = compression(path)
    if kind == "gz":
        return gzip.open(path, "rb")
    if kind == "bz2":
        return bz2.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    return open(path, "rb", buffering=buffer)


# --- archives ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One file inside an archive: its path there and uncompressed size (0 when not known up front)."""

    name: str
    size: int


def _wanted(name: str, pattern: str) -> bool:
    base = os.path.basename(name)
    return not (name.startswith("__MACOSX/") or base.startswith("._")) and fnmatch.fnmatch(name, pattern)


def zip_members(path: str, pattern: str) -> list[Member]:
    """Regular members of a zip whose path matches ``pattern`` (fnmatch), in name order."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except _STREAM_ERRORS as exc:
        raise SourceFormatError(f"{path}: not a readable zip file ({exc})") from exc
    return sorted(
        (Member(i.filename, i.file_size) for i in infos if not i.is_dir() and _wanted(i.filename, pattern)),
        key=lambda m: m.name,
    )


def iter_members(
    path: str, pattern: str, members: list[Member] | None = None
) -> Iterator[tuple[str, IO[bytes]]]:
    """Yield ``(member path, open binary stream)`` for each archive member matching ``pattern`` (zip:
    in name order, or only ``members``; tar: in archive order). Damage is a ``SourceFormatError``."""
    try:
        if sniff(path) == "zip":
            with zipfile.ZipFile(path) as zf:
                for m in members if members is not None else zip_members(path, pattern):
                    with zf.open(m.name) as f:
                        yield m.name, f
        else:
            with tarfile.open(path, "r|*") as tf:
                for info in tf:
                    if info.isfile() and _wanted(info.name, pattern):
                        f = tf.extractfile(info)
                        if f is not None:
                            yield info.name, f
    except NotImplementedError as exc:  # e.g. a zip member compressed with Deflate64
        raise SourceFormatError(f"{path}: {exc}; unpack it and point the config at the files") from exc
    except _STREAM_ERRORS as exc:
        raise SourceFormatError(f"{path}: corrupt or truncated archive ({exc})") from exc


@contextmanager
def single_stream(path: str, pattern: str, what: str) -> Iterator[tuple[str, IO[bytes]]]:
    """``(display name, stream)`` of a file that holds one document: the file itself (decompressed by
    suffix), or the one member of a zip/tar matching ``pattern``. The display name is the file's base
    name, or the member's, so locators match those of the unpacked file."""
    kind = sniff(path)
    if kind not in ("zip", "tar"):
        with open_binary(path) as f:
            yield os.path.basename(path), f
        return
    found = False
    for name, f in iter_members(path, pattern):
        if found:
            raise SourceFormatError(f"{path}: holds more than one {what} ({pattern}); unpack it")
        found = True
        yield os.path.basename(name), f
    if not found:
        raise SourceFormatError(f"{path}: a {kind} archive without a {what} member ({pattern})")


# --- plain text in byte ranges -----------------------------------------------------------------------

_NEWLINES: dict[tuple[str, int, int], dict[int, int]] = {}  # file version -> {offset: newlines before it}


def _file_key(path: str) -> tuple[str, int, int]:
    st = os.stat(path)
    return os.path.realpath(path), st.st_size, st.st_mtime_ns


def newlines_before(path: str, offset: int) -> int:
    """How many ``\\n`` bytes precede ``offset`` (counted in 8 MiB reads from the nearest offset this
    process already counted, so consecutive pieces of one file cost one pass)."""
    known = _NEWLINES.setdefault(_file_key(path), {0: 0})
    base = max(o for o in known if o <= offset)
    count, remaining = known[base], offset - base
    with open(path, "rb", buffering=0) as f:
        f.seek(base)
        while remaining > 0:
            chunk = f.read(min(remaining, 8 << 20))
            if not chunk:
                break
            count += chunk.count(b"\n")
            remaining -= len(chunk)
    if len(known) > 4096:
        known.clear()
        known[0] = 0
    known[offset] = count
    return count


def line_start(f: IO[bytes], offset: int) -> int:
    """The offset of the first line that starts at or after ``offset`` in an open binary file."""
    if offset <= 0:
        return 0
    f.seek(offset - 1)
    if f.read(1) == b"\n":
        return offset
    f.readline()
    return f.tell()


def iter_line_range(path: str, start: int, end: int, buffer: int) -> Iterator[tuple[int, bytes]]:
    """``(1-based line number, line without \\n or \\r\\n)`` of every line whose first byte lies in
    ``[start, end)`` of a plain (uncompressed) text file."""
    with open(path, "rb", buffering=buffer) as f:
        pos = line_start(f, start)
        if pos >= end:
            return
        lineno = newlines_before(path, pos) + 1
        f.seek(pos)
        for raw in f:
            if pos >= end:
                break
            yield lineno, raw.rstrip(b"\n").rstrip(b"\r")
            pos += len(raw)
            lineno += 1


def byte_pieces(path: str, rows_per_piece: int, skip_lines: int = 0) -> list[str]:
    """``bytes:`` pieces of a plain text file of about ``rows_per_piece`` lines each (line length
    estimated from the first MiB), aligned to line starts; ``[""]`` when one piece covers it."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        sample = f.read(1 << 20)
        avg = len(sample) / max(1, sample.count(b"\n"))
        target = max(1, int(rows_per_piece * avg))
        if size <= target:
            return [""]
        starts = [0]
        f.seek(0)
        for _ in range(skip_lines):  # a header stays in the first piece
            f.readline()
        header_end = f.tell()
        for t in range(target, size, target):
            b = line_start(f, max(t, header_end))
            if starts[-1] < b < size:
                starts.append(b)
    if len(starts) == 1:
        return [""]
    return [f"bytes:{a}-{b}" for a, b in zip(starts, [*starts[1:], size], strict=True)]


def peek(path: str, pattern: str, limit: int = 64 << 10) -> tuple[str, bytes]:
    """``(container kind, first bytes)`` of a one-document file: the file itself (decompressed) or its
    ``pattern`` member in a zip/tar; ``SourceFormatError`` when that cannot be read."""
    kind = sniff(path)
    try:
        with single_stream(path, pattern, "document") as (_, f):
            return kind, f.read(limit)
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        if isinstance(exc, SourceFormatError):
            raise
        raise SourceFormatError(f"{path}: corrupt or truncated ({exc})") from exc

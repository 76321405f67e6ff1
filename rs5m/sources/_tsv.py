"""Line-based text inputs shared by the CC, WIT and YFCC adapters: a sample of the first lines (for
layout detection), whole-file or byte-range line iteration, and byte-range piece planning.

A plain (uncompressed) file splits into ``bytes:`` pieces; a compressed one is one piece.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from rs5m.sources._files import byte_pieces, compression, iter_line_range, open_binary, sniff
from rs5m.sources._pieces import parse_piece
from rs5m.sources._text import iter_lines
from rs5m.sources.base import SourceFormatError

SAMPLE_BYTES = 256 << 10
SAMPLE_LINES = 200


def first_lines(path: str, n: int = SAMPLE_LINES, limit: int = SAMPLE_BYTES) -> list[bytes]:
    """Up to ``n`` non-empty lines from the first ``limit`` bytes (decompressed), for detection.
    A file that is not text (SQLite, parquet, an archive) or a damaged stream is a ``SourceFormatError``."""
    kind = sniff(path)
    if kind != "text":
        raise SourceFormatError(f"{path}: a {kind} file, not a text file")
    try:
        with open_binary(path) as f:
            data = f.read(limit)
    except (OSError, EOFError, ValueError) as exc:
        raise SourceFormatError(f"{path}: corrupt or truncated stream ({exc})") from exc
    lines = data.split(b"\n")
    if len(data) == limit:
        lines = lines[:-1]  # the last one may be cut
    return [x.rstrip(b"\r") for x in lines if x.rstrip(b"\r")][:n]


def splittable(path: str) -> bool:
    """Whether ``path`` is plain text that can be read in byte ranges."""
    return not compression(path) and sniff(path) == "text"


def text_pieces(path: str, rows_per_piece: int, header_lines: int = 0) -> list[str]:
    """``bytes:`` pieces of a plain text file, ``[""]`` for a compressed one (see ``byte_pieces``)."""
    return byte_pieces(path, rows_per_piece, header_lines) if splittable(path) else [""]


def lines_of(path: str, piece: str | None, buffer: int) -> Iterator[tuple[int, bytes]]:
    """``(1-based line number, line)`` of the whole file or of one ``bytes:`` piece of it."""
    p = parse_piece(piece, path, ("bytes",) if splittable(path) else ())
    if p is None:
        with open_binary(path, buffer) as f:
            yield from iter_lines(path, f)
    else:
        if p.last > os.path.getsize(path):
            raise ValueError(f"{path}: piece {piece!r} is past the end of the file")
        yield from iter_line_range(path, p.first, p.last, buffer)

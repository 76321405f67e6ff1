"""Helpers for the line (TSV) and JSON sources: chunked line reading, JSON documents (plain, compressed
or inside an archive), caption joins, and ``RowBuffer``, which checks Python values and turns them into
``RawBatch`` objects.
"""

from __future__ import annotations

import json
import lzma
import math
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from typing import IO, Any

from rs5m.sources._files import single_stream
from rs5m.sources.base import RawBatch, RawReject, SourceFormatError, raw_table

_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")
_INT32_MAX = 2**31 - 1


def iter_lines(path: str, f: IO[bytes], start: int = 1) -> Iterator[tuple[int, bytes]]:
    """Yield ``(1-based line number, line without its \\n or \\r\\n)`` from an open binary file.

    A corrupt compressed stream is a whole-file problem: ``SourceFormatError`` naming the line.
    """
    lineno = start - 1
    try:
        for lineno, raw in enumerate(f, start):
            yield lineno, raw.rstrip(b"\n").rstrip(b"\r")
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise SourceFormatError(f"{path}: corrupt or truncated stream after line {lineno} ({exc})") from exc


def split_tsv(raw: bytes, n_fields: int | tuple[int, ...]) -> tuple[list[str] | None, str, str]:
    """Decode one TSV line and split it on tabs (no CSV quoting in these sources).

    Returns ``(fields, "", "")`` or ``(None, reason, detail)`` for NULs, bad UTF-8 or a wrong count.
    """
    counts = (n_fields,) if isinstance(n_fields, int) else n_fields
    if b"\x00" in raw:
        return None, "malformed_row", "NUL byte in line"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, "bad_encoding", f"not UTF-8 at byte {exc.start}"
    fields = line.split("\t")
    if len(fields) not in counts:
        want = " or ".join(str(c) for c in counts)
        return None, "malformed_row", f"expected {want} tab-separated fields, got {len(fields)}"
    return fields, "", ""


def join_sentences(parts: Iterable[str | None], sep: str = ". ") -> str:
    """Join text pieces with ``sep``: pieces are stripped, empty ones skipped, and a piece already
    ending with the separator's punctuation (``"."`` for ``". "``) is not given a second one."""
    mark = sep.rstrip()
    pieces = [p.strip() for p in parts if p]
    pieces = [p for p in pieces if p]
    if not mark:
        return sep.join(pieces)
    out = [p[: -len(mark)] if p.endswith(mark) and i < len(pieces) - 1 else p for i, p in enumerate(pieces)]
    return sep.join(out)


def as_int(v: Any) -> int | None:
    """An image dimension from JSON/TSV: ints, integral floats and digit strings; else ``None``."""
    if isinstance(v, bool):
        return None
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        v = int(v)
    elif isinstance(v, str) and v.strip().isascii() and v.strip().isdigit():  # "²" is a digit to isdigit
        v = int(v.strip())
    if isinstance(v, int) and 0 <= v <= _INT32_MAX:
        return v
    return None


def as_float(v: Any) -> float | None:
    """A finite float from a number or numeric string; else ``None``."""
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def load_json_document(path: str, pattern: str = "*.json", object_hook: Any = None) -> tuple[str, Any]:
    """``(display name, document)`` of one JSON file: plain, ``.gz``/``.bz2``, or the one ``pattern``
    member of a zip/tar (the display name is then the member's base name). Any read or parse failure is
    one ``SourceFormatError`` naming the file."""
    try:
        with single_stream(path, pattern, "JSON document") as (name, f):
            return name, json.load(f, object_hook=object_hook)
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
        if isinstance(exc, SourceFormatError):
            raise
        # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise SourceFormatError(f"{path}: not a valid JSON document ({exc})") from exc


class RowBuffer:
    """Collects parsed rows and rejects of one file; ``full()`` after ``batch_rows`` inputs.

    ``add`` checks what Python values can carry but Arrow/UTF-8 cannot: url, caption and key must be
    ``str`` or ``None`` (else ``malformed_row``), contain no NUL (``malformed_row``) and no lone
    surrogates such as JSON ``"\\ud800"`` escapes (``bad_encoding``).
    """

    def __init__(self, path: str, batch_rows: int, name: str | None = None) -> None:
        self.fname = name or os.path.basename(path)
        self.batch_rows = batch_rows
        self._cols: dict[str, list[Any]] = {k: [] for k in ("key", "url", "caption", "width", "height")}
        self._extras: list[str | None] = []
        self._rejects: list[RawReject] = []

    def where(self, pos: int | str) -> str:
        """Locator ``<file name>:<line or index>``."""
        return f"{self.fname}:{pos}"

    def reject(self, pos: int | str, reason: str, detail: str = "", key: str | None = None) -> None:
        """Record one rejected input row."""
        self._rejects.append(RawReject(self.where(pos), reason, detail, key))

    def add(
        self,
        pos: int | str,
        key: Any,
        url: Any,
        caption: Any,
        width: int | None = None,
        height: int | None = None,
        extras: dict[str, Any] | str | None = None,
        checked: bool = False,
    ) -> None:
        """Record one row, or a reject when its values are unusable. ``extras`` is a dict or ready JSON
        object text. ``checked=True`` skips the text checks for values that came from strict UTF-8
        decoding of a NUL-free line."""
        skey = key if isinstance(key, str) or key is None else None
        ext = extras if isinstance(extras, str) else None
        if isinstance(extras, dict) and extras:
            try:
                ext = json.dumps(extras, ensure_ascii=False, default=str, allow_nan=False)
            except ValueError:  # NaN/Infinity (accepted by json.load) is not valid JSON text
                return self.reject(pos, "malformed_row", "non-finite number in extras", skey)
        if not checked:
            for name, v in (("key", key), ("url", url), ("caption", caption)):
                if v is not None and not isinstance(v, str):
                    return self.reject(pos, "malformed_row", f"{name} is {type(v).__name__}, not text", skey)
            for name, v in (("key", key), ("url", url), ("caption", caption), ("extras", ext)):
                m = _NUL_OR_SURROGATE.search(v) if v else None
                if m:
                    reason = "malformed_row" if m.group() == "\x00" else "bad_encoding"
                    what = "NUL character" if reason == "malformed_row" else "lone surrogate"
                    return self.reject(pos, reason, f"{what} in {name}", None if name == "key" else skey)
        for name, v in (
            ("key", key),
            ("url", url),
            ("caption", caption),
            ("width", width),
            ("height", height),
        ):
            self._cols[name].append(v)
        self._extras.append(ext)

    def __len__(self) -> int:
        return len(self._extras) + len(self._rejects)

    def full(self) -> bool:
        """Whether ``batch_rows`` inputs (rows plus rejects) have been collected."""
        return len(self) >= self.batch_rows

    def drain(self) -> Iterator[RawBatch]:
        """Yield the last batch of a file, if anything is left."""
        if len(self):
            yield self.take()

    def take(self) -> RawBatch:
        """Return the collected batch and start a new one."""
        batch = RawBatch(raw_table({**self._cols, "extras": self._extras}), self._rejects)
        self._cols = {k: [] for k in self._cols}
        self._extras = []
        self._rejects = []
        return batch

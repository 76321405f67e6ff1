"""Vectorised Arrow helpers for the parquet sources (LAION family, COYO).

These sources hold billions of rows, so every per-row step here is a ``pyarrow.compute`` kernel; Python
only touches rows on the rare slow paths (invalid UTF-8, control characters inside JSON strings).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rs5m.sources._pieces import group_ranges, parse_piece
from rs5m.sources.base import RAW_SCHEMA, Keep, RawBatch, RawReject, SourceFormatError

INT32_MAX = 2**31 - 1
_STRINGY = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)


def open_parquet(path: str, buffer_size: int = 1 << 20) -> pq.ParquetFile:
    """Open ``path`` as parquet for streaming; ``SourceFormatError`` naming the file when it is not
    parquet (or is truncated: the footer is read here).

    ``pre_buffer=False`` and a ``buffer_size`` read buffer make pyarrow read each column chunk through
    a small buffered stream instead of loading whole row groups, so memory stays at about one batch
    whatever the file's or row group's size.
    """
    try:
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=buffer_size)
    except (pa.ArrowException, OSError) as exc:
        raise SourceFormatError(f"{path}: not a readable parquet file ({exc})") from exc


def row_group_pieces(pf: pq.ParquetFile, rows_per_piece: int) -> list[str]:
    """``rg:`` pieces of about ``rows_per_piece`` rows (whole row groups); ``[""]`` for one piece."""
    meta = pf.metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    ranges = group_ranges(sizes, rows_per_piece)
    return [""] if len(ranges) <= 1 else [f"rg:{a}-{b}" for a, b in ranges]


def piece_groups(path: str, pf: pq.ParquetFile, piece: str | None) -> tuple[list[int] | None, int]:
    """Row groups of ``piece`` (``None``: all) and the file row of its first row."""
    p = parse_piece(piece, path, ("rg",))
    if p is None:
        return None, 0
    meta = pf.metadata
    if p.last >= meta.num_row_groups:
        raise ValueError(f"{path}: piece {piece!r} past the file's {meta.num_row_groups} row groups")
    offset = sum(meta.row_group(i).num_rows for i in range(p.first))
    return list(range(p.first, p.last + 1)), offset


def resolve_columns(
    path: str, names: Sequence[str], required: Sequence[str], optional: Sequence[str]
) -> dict[str, str]:
    """Map wanted column names to the file's names, ignoring case (files differ: ``URL`` vs ``url``).

    Raises ``SourceFormatError`` naming the file and every missing required column.
    """
    by_lower = {n.lower(): n for n in names}
    found = {w: by_lower[w.lower()] for w in [*required, *optional] if w.lower() in by_lower}
    missing = [w for w in required if w not in found]
    if missing:
        raise SourceFormatError(f"{path}: missing column(s) {missing}; file has {list(names)}")
    return found


def iter_parquet(
    path: str, pf: pq.ParquetFile, columns: dict[str, str], batch_rows: int, piece: str | None = None
) -> Iterator[tuple[int, dict[str, pa.Array]]]:
    """Yield ``(row offset in the file, {wanted name: array})`` for each batch of the file or of one
    ``rg:`` piece, reading only ``columns``."""
    wanted = list(dict.fromkeys(columns.values()))
    groups, offset = piece_groups(path, pf, piece)
    try:
        for batch in pf.iter_batches(columns=wanted, batch_size=batch_rows, row_groups=groups):
            yield offset, {w: batch.column(actual) for w, actual in columns.items()}
            offset += batch.num_rows
    except pa.ArrowException as exc:
        raise SourceFormatError(f"{path}: unreadable parquet data after row {offset} ({exc})") from exc


def as_string(path: str, name: str, arr: pa.Array) -> pa.Array:
    """View a text column as Arrow strings (without UTF-8 validation); other types are a format error."""
    t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_dictionary(t):
        return as_string(path, name, arr.dictionary_decode())
    if pa.types.is_binary(t):
        return arr.view(pa.string())
    if pa.types.is_large_binary(t):
        return arr.view(pa.large_string())
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return arr
    raise SourceFormatError(f"{path}: column {name!r} has type {t}, expected a string column")


def invalid_rows(arr: pa.Array) -> list[int]:
    """Row indices whose values are not valid UTF-8 (parquet readers do not check)."""
    try:
        arr.validate(full=True)
        return []
    except pa.ArrowInvalid:
        if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
            # A slice of a list array still validates its whole child array: look at the children.
            parents = pc.list_parent_indices(arr).to_pylist()
            return sorted({parents[j] for j in invalid_rows(pc.list_flatten(arr))})
        bad = []
        for i in range(len(arr)):
            try:
                arr.slice(i, 1).validate(full=True)
            except pa.ArrowInvalid:
                bad.append(i)
        return bad


def to_key(arr: pa.Array | None, n: int, path: str = "") -> pa.Array:
    """Source ids as strings; integral floats print without ``.0``; non-finite values become null.

    Raises ``SourceFormatError`` (naming ``path``) for an id column that is neither numbers nor text.
    """
    if arr is None or pa.types.is_null(arr.type):
        return pa.nulls(n, pa.string())
    if pa.types.is_floating(arr.type):
        ok = pc.is_finite(arr)
        ints = pc.cast(pc.if_else(ok, arr, 0.0), pa.int64(), safe=False)
        return pc.if_else(ok, pc.cast(ints, pa.string()), pa.scalar(None, pa.string()))
    if any(f(arr.type) for f in _STRINGY) or pa.types.is_dictionary(arr.type):
        return as_string("", "key", arr).cast(pa.string())
    if not (pa.types.is_integer(arr.type) or pa.types.is_decimal(arr.type)):
        raise SourceFormatError(f"{path}: the id column has type {arr.type}, not a number or string")
    return pc.cast(arr, pa.string())


def to_int32(arr: pa.Array | None, n: int) -> pa.Array:
    """Dimensions as int32; null where missing, non-numeric, negative, non-finite or over int32."""
    null = pa.scalar(None, pa.int32())
    if arr is None or not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        if arr is not None and pa.types.is_string(arr.type):
            try:
                arr = pc.cast(arr, pa.float64())
            except pa.ArrowInvalid:
                return pa.nulls(n, pa.int32())
        else:
            return pa.nulls(n, pa.int32())
    ok = pc.and_(pc.greater_equal(arr, 0), pc.less_equal(arr, INT32_MAX))
    if pa.types.is_floating(arr.type):
        ok = pc.and_(ok, pc.is_finite(arr))
        arr = pc.if_else(ok, arr, 0.0)
    return pc.if_else(ok, pc.cast(arr, pa.int32(), safe=False), null)


def _json_strings(arr: pa.Array) -> pa.Array:
    """JSON string literals for a string array (nulls stay null)."""
    esc = pc.replace_substring(arr, "\\", "\\\\")
    esc = pc.replace_substring(esc, '"', '\\"')
    text = pc.binary_join_element_wise('"', esc, '"', "")
    ctrl = pc.match_substring_regex(arr, r"[\x00-\x1f]")
    if pc.any(ctrl).as_py():
        # Control characters need \uXXXX escapes that no Arrow kernel computes; they are rare.
        mask = pc.fill_null(ctrl, False)
        vals = pc.filter(arr, mask).to_pylist()
        text = pc.replace_with_mask(text, mask, pa.array([json.dumps(v, ensure_ascii=False) for v in vals]))
    return text


def json_values(arr: pa.Array) -> pa.Array:
    """JSON text of each value (``null`` for nulls and non-finite floats); never null itself."""
    t = arr.type
    if pa.types.is_floating(t):
        text = pc.if_else(pc.is_finite(arr), pc.cast(arr, pa.string()), pa.scalar(None, pa.string()))
    elif pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t):
        text = pc.cast(arr, pa.string())
    elif pa.types.is_null(t):
        text = pa.nulls(len(arr), pa.string())
    elif any(f(t) for f in _STRINGY) or pa.types.is_dictionary(t):
        text = _json_strings(as_string("", "extras", arr).cast(pa.string()))
    elif pa.types.is_temporal(t):
        text = _json_strings(pc.cast(arr, pa.string()))
    else:
        text = pa.array([json.dumps(v, ensure_ascii=False, default=str) for v in arr.to_pylist()])
    return pc.fill_null(text, "null")


def json_objects(fields: Sequence[tuple[str, pa.Array]], n: int) -> pa.Array:
    """One JSON object text per row from ``(key, values)`` pairs; all-null when there are no fields."""
    if not fields:
        return pa.nulls(n, pa.string())
    parts: list[Any] = []
    for i, (key, values) in enumerate(fields):
        parts.append(("{" if i == 0 else ",") + json.dumps(key) + ":")
        parts.append(json_values(values))
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "")


def _may_hold_nul(arr: pa.Array) -> bool:
    """False when no value of a string array can hold a NUL: one pass over its data buffer (a NUL is rare,
    and a per-row substring search costs ~10x the read of the column)."""
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)) or len(arr) == 0:
        return pa.types.is_binary(arr.type)
    data = arr.buffers()[2]
    return data is not None and data.size > 0 and int(np.frombuffer(data, np.uint8).min()) == 0


def assemble(
    path: str,
    offset: int,
    url: pa.Array,
    caption: pa.Array,
    key: pa.Array,
    width: pa.Array,
    height: pa.Array,
    extras: Sequence[tuple[str, pa.Array]],
    pre_bad: dict[int, tuple[str, str]] | None = None,
    keep: Keep | None = None,
) -> RawBatch:
    """Validate text and build one ``RawBatch``.

    Rows with invalid UTF-8 in url, caption, key or an extras column become ``bad_encoding``; a NUL in
    url/caption/key is ``malformed_row``; ``pre_bad`` adds rows the caller already rejected
    (``{row: (reason, detail)}``). Locators are ``<file>:<0-based row in file>``. With ``keep``, only the
    readable rows it selects get their extras JSON built (``RawBatch.others`` holds the rest, key, url
    and caption only); every row is still checked, so the rejects are the same either way.
    """
    n = len(url)
    fname = os.path.basename(path)
    bad: dict[int, tuple[str, str]] = dict(pre_bad or {})

    def clean(name: str, arr: pa.Array) -> pa.Array:
        # Null invalid values (in this column only) so later kernels never see broken UTF-8.
        if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
            arr = as_string(path, name, arr)  # binary columns validate as bytes: view them as text
        rows = invalid_rows(arr)
        for i in rows:
            bad.setdefault(i, ("bad_encoding", f"{name} is not valid UTF-8"))
        if not rows:
            return arr
        hit = set(rows)
        return pc.if_else(pa.array([i in hit for i in range(n)]), pa.scalar(None, arr.type), arr)

    url, caption, key = clean("url", url), clean("caption", caption), clean("key", key)
    extras = [(k, clean(k, a)) for k, a in extras]
    for name, arr in [("url", url), ("caption", caption), ("key", key)]:
        if not _may_hold_nul(arr):
            continue
        has_nul = pc.fill_null(pc.match_substring(arr, "\x00"), False)
        if pc.any(has_nul).as_py():
            for i in pc.indices_nonzero(has_nul).to_pylist():
                bad.setdefault(i, ("malformed_row", f"NUL character in {name}"))
    key = key.cast(pa.string())
    url, caption = url.cast(pa.string()), caption.cast(pa.string())
    good = np.ones(n, dtype=bool)
    good[list(bad)] = False
    rejects: list[RawReject] = []
    if bad:
        keys = key.to_pylist()
        rejects = [RawReject(f"{fname}:{offset + i}", r, d, keys[i]) for i, (r, d) in sorted(bad.items())]
    others = None
    if keep is not None:
        chosen = good & pc.fill_null(keep(caption), False).to_numpy(zero_copy_only=False)
        rest = pa.array(good & ~chosen)
        others = pa.table({"key": key.filter(rest), "url": url.filter(rest), "caption": caption.filter(rest)})
        good = chosen
    rows = None if good.all() else pa.array(good)

    def pick(arr: pa.Array) -> pa.Array:
        return arr if rows is None else arr.filter(rows)

    cols = [pick(key), pick(url), pick(caption), pick(width), pick(height)]
    kept = int(good.sum())
    cols.append(json_objects([(k, pick(a)) for k, a in extras], kept))
    return RawBatch(pa.Table.from_arrays(cols, schema=RAW_SCHEMA), rejects, others)

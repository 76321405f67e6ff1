"""A column-mapping parquet adapter with several named layouts, specialised by the LAION, COYO and CC
modules.

A layout lists, for each role (url, caption, key, width, height), the candidate column names in
preference order; names match case-insensitively (``URL`` = ``url``). The first layout whose url and
caption (and ``requires``) columns the file has is the file's layout. The ``columns`` option maps roles
to columns by hand, so a re-release with new names is read without code. Reads only the columns it
needs, one batch at a time (``pre_buffer=False``, small read buffer; see ``rs5m.sources._arrow``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from rs5m.sources._arrow import (
    as_string,
    assemble,
    iter_parquet,
    open_parquet,
    row_group_pieces,
    to_int32,
    to_key,
)
from rs5m.sources.base import AdapterOptions, Keep, LayoutInfo, RawBatch, SourceFormatError, tried

Cols = tuple[str, ...]


@dataclass(frozen=True)
class ParquetLayout:
    """A named layout: candidate columns per role (first present wins; keys are coalesced per row in
    order), ``extras`` (JSON key, column) kept when present, ``requires`` columns that tell it apart."""

    name: str
    url: Cols
    caption: Cols
    key: Cols = ()
    width: Cols = ()
    height: Cols = ()
    extras: tuple[tuple[str, str], ...] = ()
    requires: Cols = ()

    def needs(self) -> str:
        """The columns this layout needs, for error messages."""
        return ", ".join(["|".join(self.url), "|".join(self.caption), *self.requires])


class ParquetColumns(BaseModel):
    """The ``columns`` option: file column names for each role (unset roles keep the detected
    layout's columns). Names match case-insensitively."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = None
    caption: str | None = None
    key: str | None = None
    width: str | None = None
    height: str | None = None


class ParquetOptions(AdapterOptions):
    """Options of every parquet source: ``columns`` maps roles to columns for an unknown layout."""

    columns: ParquetColumns | None = None


@dataclass
class Resolved:
    """A layout resolved against one file's columns: actual column names per role."""

    layout: str
    roles: dict[str, str]  # url, caption, width, height (those found)
    keys: list[str] = field(default_factory=list)
    extras: list[tuple[str, str]] = field(default_factory=list)
    also: dict[str, str] = field(default_factory=dict)  # more columns an adapter reads, by purpose

    def columns(self) -> dict[str, str]:
        """Every column to read, by its own name."""
        names = [*self.roles.values(), *self.keys, *(c for _, c in self.extras), *self.also.values()]
        return {c: c for c in names}


def finder(names: Sequence[str]) -> Callable[[Sequence[str]], str | None]:
    """``find(candidates)``: the file's name of the first candidate column present (case-insensitive)."""
    by_lower = {n.lower(): n for n in names}

    def find(cands: Sequence[str]) -> str | None:
        return next((by_lower[c.lower()] for c in cands if c.lower() in by_lower), None)

    return find


def resolve(
    path: str,
    names: Sequence[str],
    layouts: Sequence[ParquetLayout],
    columns: BaseModel | None,
    what: str,
    roles: Cols = ("url", "caption", "key", "width", "height"),
) -> Resolved:
    """Match a file's column ``names`` to the first fitting layout, then apply the ``columns`` option.

    Raises ``SourceFormatError`` (one line: the file, every layout tried, the file's columns) when no
    layout fits and the option does not name url and caption, or names a column the file lacks.
    """
    by_lower = {n.lower(): n for n in names}
    find = finder(names)
    mapped = {r: v for r, v in (columns.model_dump() if columns else {}).items() if v}

    def fits(lay: ParquetLayout) -> bool:
        # a role the columns option maps needs no column of the layout
        needed = [c for role, c in (("url", lay.url), ("caption", lay.caption)) if role not in mapped]
        return all(find(c) for c in needed) and all(find((r,)) for r in lay.requires)

    # the first layout that fits as is; else, with a column map, the first that fits with it
    lay = next((lay for lay in layouts if _strict(lay, find)), None)
    if lay is None and mapped and not {"url", "caption"} <= set(mapped):
        lay = next((lay for lay in layouts if fits(lay)), None)
    found: dict[str, str] = {}
    keys: list[str] = []
    if lay is not None:
        for role in roles:
            if role != "key" and (col := find(getattr(lay, role))):
                found[role] = col
        keys = [by_lower[c.lower()] for c in lay.key if c.lower() in by_lower]
    for role, col in mapped.items():
        actual = find((col,))
        if actual is None:
            raise SourceFormatError(
                f"{path}: column {col!r} (columns option, {role}) is not in the file; it has {list(names)}"
            )
        if role == "key":
            keys = [actual]
        else:
            found[role] = actual
    if "url" not in found or "caption" not in found:
        layouts_tried = {lay.name: lay.needs() for lay in layouts}
        raise tried(path, what, layouts_tried, f"file has {list(names)}; map them with the columns option")
    name = (lay.name if lay else "custom") + ("+columns" if mapped else "")
    extras = [(k, find((c,)) or c) for k, c in (lay.extras if lay else ()) if find((c,))]
    return Resolved(name, found, keys, extras)


def _strict(lay: ParquetLayout, find: Callable[[Sequence[str]], str | None]) -> bool:
    """Whether the file has all of ``lay``'s url, caption and required columns."""
    return all(find(c) for c in (lay.url, lay.caption)) and all(find((r,)) for r in lay.requires)


def coalesce_keys(path: str, b: dict[str, pa.Array], keys: list[str], n: int) -> pa.Array:
    """Source ids from the key columns in order: per row, the first non-null one."""
    arrays = [to_key(b[k], n, path) for k in keys]
    if not arrays:
        return pa.nulls(n, pa.string())
    return arrays[0] if len(arrays) == 1 else pc.coalesce(*arrays)


class ParquetAdapter:
    """Generic parquet source over ``layouts`` (see the module docstring)."""

    name: ClassVar[str]
    what: ClassVar[str]
    options_model: ClassVar[type[AdapterOptions]] = ParquetOptions
    layouts: ClassVar[tuple[ParquetLayout, ...]]

    def resolve(self, path: str, pf: pq.ParquetFile, options: ParquetOptions) -> Resolved:
        """The file's layout resolved to its columns (``SourceFormatError`` when none fits)."""
        return resolve(path, pf.schema_arrow.names, self.layouts, options.columns, self.what)

    def detect(self, path: str, options: ParquetOptions) -> LayoutInfo:
        """Layout from the schema and row count from the footer."""
        pf = open_parquet(path, options.read_buffer_bytes)
        return LayoutInfo(self.resolve(path, pf, options).layout, pf.metadata.num_rows)

    def pieces(self, path: str, options: ParquetOptions, rows_per_piece: int) -> list[str]:
        """Row-group ranges of about ``rows_per_piece`` rows, from the footer."""
        pf = open_parquet(path, options.read_buffer_bytes)
        self.resolve(path, pf, options)
        return row_group_pieces(pf, rows_per_piece)

    def read(
        self, path: str, options: ParquetOptions, piece: str | None = None, keep: Keep | None = None
    ) -> Iterator[RawBatch]:
        """Yield one ``RawBatch`` per parquet batch of ``options.batch_rows`` rows (of ``piece``)."""
        pf = open_parquet(path, options.read_buffer_bytes)
        r = self.resolve(path, pf, options)
        for offset, b in iter_parquet(path, pf, r.columns(), options.batch_rows, piece):
            n = len(b[r.roles["url"]])
            width, height = r.roles.get("width"), r.roles.get("height")
            yield assemble(
                path,
                offset,
                url=as_string(path, r.roles["url"], b[r.roles["url"]]),
                caption=as_string(path, r.roles["caption"], b[r.roles["caption"]]),
                key=coalesce_keys(path, b, r.keys, n),
                width=to_int32(b[width] if width else None, n),
                height=to_int32(b[height] if height else None, n),
                extras=[(k, b[c]) for k, c in r.extras] + self.more_extras(b, r, options),
                keep=keep,
            )

    def more_extras(
        self, b: dict[str, pa.Array], r: Resolved, options: ParquetOptions
    ) -> list[tuple[str, pa.Array]]:
        """Extras computed from several columns (none by default; CC3M adds its tags)."""
        return []

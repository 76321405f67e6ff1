"""The contract every PUB11 source adapter implements.

An adapter parses one input file in its official format and yields ``RawBatch`` objects. It does
only what is specific to its format: column mapping, malformed lines, undecodable text, and
source-specific filters (WIT language, YFCC subset). Checks common to all sources (URL scheme and
length, empty captions, duplicate records, uid derivation) happen once, in ``rs5m.pipeline.ingest``.

Three calls, all cheap to plan and bounded in memory:

- ``detect(path, options) -> LayoutInfo``: which of the adapter's layouts the file is in (from its
  parquet schema, SQLite tables, header line or first lines), and its row count when that is cheap
  (parquet footer); ``SourceFormatError`` naming the file and every layout tried when none fits.
- ``pieces(path, options, rows_per_piece) -> list[str]``: opaque piece specs that split one big file
  into partitions (``"rg:0-7"`` parquet row groups 0..7, ``"rowid:1-5000000"`` SQLite rowids,
  ``"bytes:0-268435456"`` a half-open byte range of plain text aligned to line starts,
  ``"members:0-9"`` archive members 0..9 in name order), or ``[""]`` (one piece: the whole file) for
  formats that cannot be split (compressed text, one JSON document). Planning reads only the parquet
  footer, SQLite ``min/max(rowid)``, a zip directory, or the file size plus a seek per boundary.
- ``read(path, options, piece=None)``: the rows of that piece (``None`` or ``""``: the whole file).
  Reading every piece of a file yields exactly the rows and rejects (same locators) of reading it whole.

Memory: an adapter streams (parquet batches with ``pre_buffer=False`` and a small read buffer, SQLite
cursors, fixed-size chunks of lines). Formats that are one JSON document (SBU, Visual Genome, each
RedCaps annotation file) are parsed whole, one document at a time: JSON cannot be split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

# Columns of ``RawBatch.table``. ``key`` is the source's own id, or None to derive it from url+caption.
RAW_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string()),
        pa.field("url", pa.string()),
        pa.field("caption", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("extras", pa.string()),  # JSON object text, or null
    ]
)


@dataclass(frozen=True)
class RawReject:
    """A row the adapter could not turn into a record. ``locator`` is ``<file name>:<line or row>``
    when no id is known; ``key`` is the source id (or url) when it is."""

    locator: str
    reason: str
    detail: str = ""
    key: str | None = None


# A row filter on the caption column (the keyword mask): rows it rejects need no extras, width or height.
Keep = Callable[[pa.Array], pa.Array]


@dataclass
class RawBatch:
    """One chunk of an input file: parsed rows (``RAW_SCHEMA``) plus the rows rejected while parsing.

    When ``read`` was given ``keep`` and honours it, ``table`` holds only the rows ``keep`` selected and
    ``others`` the rest of the readable rows as ``key, url, caption`` only (so counts stay exact while the
    costly columns are built for the few selected rows); otherwise ``others`` is ``None``.
    """

    table: pa.Table
    rejects: list[RawReject] = field(default_factory=list)
    others: pa.Table | None = None


@dataclass(frozen=True)
class LayoutInfo:
    """What ``detect`` found: the layout's name, the row count when cheap to know (else ``None``), and
    whether that count is an estimate (e.g. from a SQLite rowid range)."""

    name: str
    rows: int | None = None
    estimated: bool = False


class AdapterOptions(BaseModel):
    """Base of every adapter's options model (``SourceInput.options`` is validated against it).

    ``batch_rows``: rows per yielded batch; ``read_buffer_bytes``: the read buffer of parquet column
    chunks and text streams, so memory does not grow with row-group or file size."""

    model_config = ConfigDict(extra="forbid")
    batch_rows: int = Field(default=65_536, ge=1)
    read_buffer_bytes: int = Field(default=1 << 20, ge=4096, le=1 << 30)


class SourceAdapter(Protocol):
    """Reads one PUB11 source's official files (see the module docstring for the contract)."""

    name: ClassVar[str]
    options_model: ClassVar[type[AdapterOptions]]

    def detect(self, path: str, options: Any) -> LayoutInfo:
        """The file's layout; ``SourceFormatError`` (one line, file named, layouts tried) if none fits."""
        ...

    def pieces(self, path: str, options: Any, rows_per_piece: int) -> list[str]:
        """Piece specs covering the file, each about ``rows_per_piece`` rows; ``[""]`` if unsplittable."""
        ...

    def read(
        self, path: str, options: Any, piece: str | None = None, keep: Keep | None = None
    ) -> Iterator[RawBatch]:
        """Yield batches for one input file (or one piece of it). Never raises for bad rows (they
        become ``RawReject``); raises ``SourceFormatError`` only when the whole file is not in the
        expected format. ``keep``: an optional row filter an adapter may apply early (``RawBatch``)."""
        ...


class SourceFormatError(ValueError):
    """The file as a whole is not in the source's format (wrong columns, not parquet, not JSON...)."""


def raw_table(rows: dict[str, list[Any]]) -> pa.Table:
    """Build a ``RAW_SCHEMA`` table from column lists (missing columns become nulls)."""
    n = len(next(iter(rows.values()))) if rows else 0
    cols = {f.name: rows.get(f.name, [None] * n) for f in RAW_SCHEMA}
    return pa.table(cols, schema=RAW_SCHEMA)


def tried(path: str, what: str, layouts: dict[str, str], found: str) -> SourceFormatError:
    """The one-line error for a file that matches none of ``layouts`` (``{name: what it needs}``)."""
    listed = "; ".join(f"{n} ({need})" for n, need in layouts.items())
    return SourceFormatError(f"{path}: not a {what} file in any known layout (tried: {listed}); {found}")

"""The contract every PUB11 source adapter implements.

An adapter parses one input file in its official format and yields ``RawBatch`` objects. It does
only what is specific to its format: column mapping, malformed lines, undecodable text, and
source-specific filters (WIT language, YFCC subset). Checks common to all sources (URL scheme and
length, empty captions, duplicate records, uid derivation) happen once, in ``rs5m.pipeline.ingest``.

Memory: an adapter streams (parquet row groups, fixed-size chunks of lines); only formats that are a
single JSON document (SBU, Visual Genome, RedCaps files) are loaded whole, one file at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

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


@dataclass
class RawBatch:
    """One chunk of an input file: parsed rows (``RAW_SCHEMA``) plus the rows rejected while parsing."""

    table: pa.Table
    rejects: list[RawReject] = field(default_factory=list)


class AdapterOptions(BaseModel):
    """Base of every adapter's options model (``SourceInput.options`` is validated against it)."""

    model_config = ConfigDict(extra="forbid")
    batch_rows: int = 65_536


class SourceAdapter(Protocol):
    """Reads one PUB11 source's official files."""

    name: ClassVar[str]
    options_model: ClassVar[type[AdapterOptions]]

    def read(self, path: str, options: Any) -> Iterator[RawBatch]:
        """Yield batches for one input file. Never raises for bad rows (they become ``RawReject``);
        raises ``SourceFormatError`` only when the whole file is not in the expected format."""
        ...


class SourceFormatError(ValueError):
    """The file as a whole is not in the source's format (wrong columns, not parquet, not JSON...)."""


def raw_table(rows: dict[str, list[Any]]) -> pa.Table:
    """Build a ``RAW_SCHEMA`` table from column lists (missing columns become nulls)."""
    n = len(next(iter(rows.values()))) if rows else 0
    cols = {f.name: rows.get(f.name, [None] * n) for f in RAW_SCHEMA}
    return pa.table(cols, schema=RAW_SCHEMA)

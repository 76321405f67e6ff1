"""A column-mapping parquet adapter, specialised by the LAION and COYO modules.

Reads only the columns it needs, one ``iter_batches`` batch at a time, and maps them to ``RAW_SCHEMA``
with Arrow kernels (see ``rs5m.sources._arrow``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from rs5m.sources._arrow import (
    as_string,
    assemble,
    iter_parquet,
    open_parquet,
    resolve_columns,
    to_int32,
    to_key,
)
from rs5m.sources.base import AdapterOptions, RawBatch


@dataclass(frozen=True)
class ParquetLayout:
    """Which file columns feed which output: names are matched case-insensitively.

    ``extras`` maps a JSON key to a column; those absent from a file are left out of its extras.
    """

    url: str
    caption: str
    key: str | None = None
    width: str | None = None
    height: str | None = None
    extras: tuple[tuple[str, str], ...] = ()


class ParquetAdapter:
    """Generic parquet source: url and caption columns are required, everything else optional."""

    name: ClassVar[str]
    options_model: ClassVar[type[AdapterOptions]] = AdapterOptions
    layout: ClassVar[ParquetLayout]

    def read(self, path: str, options: AdapterOptions) -> Iterator[RawBatch]:
        """Yield one ``RawBatch`` per parquet batch of ``options.batch_rows`` rows.

        Raises ``SourceFormatError`` when the file is not parquet or lacks the url/caption column.
        """
        lay = self.layout
        pf = open_parquet(path)
        optional = [c for c in (lay.key, lay.width, lay.height) if c] + [c for _, c in lay.extras]
        cols = resolve_columns(path, pf.schema_arrow.names, [lay.url, lay.caption], optional)
        for offset, b in iter_parquet(path, pf, cols, options.batch_rows):
            n = len(b[lay.url])
            yield assemble(
                path,
                offset,
                url=as_string(path, lay.url, b[lay.url]),
                caption=as_string(path, lay.caption, b[lay.caption]),
                key=to_key(b.get(lay.key) if lay.key else None, n, path),
                width=to_int32(b.get(lay.width) if lay.width else None, n),
                height=to_int32(b.get(lay.height) if lay.height else None, n),
                extras=[(k, b[c]) for k, c in lay.extras if c in b],
            )

"""The YFCC100M metadata SQLite file (``yfcc100m_dataset.sql``, table ``yfcc100m_dataset``) read in
rowid ranges.

Opened read-only and immutable (no locks, safe on network file systems), with ``text_factory=bytes`` so
a value that is not UTF-8 becomes a row reject instead of an exception. Planning uses only
``min/max(rowid)`` (two b-tree descents). When ``rowid`` is an alias of an ``INTEGER PRIMARY KEY``
(e.g. ``photoid``) the range is sparse: its row count is then estimated from the page count and the
average size of the first rows, and pieces are equal-width rowid ranges of that estimate.
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Iterator
from types import TracebackType
from urllib.parse import quote

from rs5m.sources._pieces import parse_piece, split_range
from rs5m.sources.base import SourceFormatError, tried

YFCC_FIELDS = (
    "photoid uid unickname datetaken dateuploaded capturedevice title description usertags machinetags "
    "longitude latitude accuracy pageurl downloadurl licensename licenseurl serverid farmid secret "
    "secretoriginal ext marker"
).split()
# The columns the adapter uses; the others of the 23 are not read.
USED = ("photoid", "datetaken", "title", "description", "usertags", "machinetags", "longitude")
USED += ("latitude", "pageurl", "downloadurl", "marker")
_REQUIRED = ("photoid", "downloadurl", "title", "description")


def _as_bytes(v: object) -> bytes:
    if v is None:
        return b""
    if isinstance(v, bytes):
        return v
    return str(v).encode()  # INTEGER / REAL values


class SqliteTable:
    """One YFCC metadata table, as a context manager (closes the connection)."""

    def __init__(self, path: str, table: str) -> None:
        self.path, self.table = path, table
        uri = "file:" + quote(os.path.abspath(path)) + "?mode=ro&immutable=1"
        try:
            self.con = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self.con.text_factory = bytes
            tables = [
                r[0].decode() for r in self.con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            if table not in tables:
                raise tried(
                    path,
                    "YFCC100M metadata SQLite",
                    {"yfcc-sqlite": f"a table {table!r} with the 23 YFCC field columns"},
                    f"its tables are {tables}",
                )
            info = list(self.con.execute(f'PRAGMA table_info("{table}")'))
        except sqlite3.DatabaseError as exc:
            raise SourceFormatError(f"{path}: not a readable SQLite database ({exc})") from exc
        self.columns = {r[1].decode().lower(): r[1].decode() for r in info}
        missing = [c for c in _REQUIRED if c not in self.columns]
        if missing:
            has = list(self.columns.values())
            raise SourceFormatError(f"{path}: table {table!r} lacks YFCC column(s) {missing}; it has {has}")
        pk = [r for r in info if r[5]]
        self.rowid_alias = len(pk) == 1 and pk[0][2].decode().upper() == "INTEGER"

    def __enter__(self) -> SqliteTable:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.con.close()

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Cursor:
        try:
            return self.con.execute(sql, args)
        except sqlite3.DatabaseError as exc:
            raise SourceFormatError(f"{self.path}: unreadable SQLite data ({exc})") from exc

    def bounds(self) -> tuple[int, int] | None:
        """``(min rowid, max rowid)``, or ``None`` for an empty table."""
        lo, hi = self._run(f'SELECT min(rowid), max(rowid) FROM "{self.table}"').fetchone()
        return None if lo is None else (int(lo), int(hi))

    def estimated_rows(self, bounds: tuple[int, int] | None) -> int:
        """Rows in the table: the rowid span when rowids are dense, else an estimate from the page
        count and the size of the first 1,000 rows."""
        if bounds is None:
            return 0
        span = bounds[1] - bounds[0] + 1
        if not self.rowid_alias:
            return span
        pages = self._run("PRAGMA page_count").fetchone()[0] * self._run("PRAGMA page_size").fetchone()[0]
        cols = ", ".join(f'length("{c}")' for c in self.columns.values())
        sizes = [sum(x or 0 for x in r) for r in self._run(f'SELECT {cols} FROM "{self.table}" LIMIT 1000')]
        per_row = max(1.0, 1.1 * sum(sizes) / max(1, len(sizes)))  # ~10 % b-tree overhead
        return max(1, min(span, int(pages / per_row)))

    def pieces(self, rows_per_piece: int) -> list[str]:
        """``rowid:`` ranges of about ``rows_per_piece`` rows each; ``[""]`` for one piece."""
        bounds = self.bounds()
        if bounds is None:
            return [""]
        parts = math.ceil(self.estimated_rows(bounds) / max(1, rows_per_piece))
        ranges = split_range(bounds[0], bounds[1], parts)
        return [""] if len(ranges) <= 1 else [f"rowid:{a}-{b}" for a, b in ranges]

    def chunks(self, piece: str | None, batch_rows: int) -> Iterator[list[tuple[int, list[bytes]]]]:
        """Chunks of ``(rowid, the 23 fields as bytes)`` in rowid order, of the table or one piece."""
        p = parse_piece(piece, self.path, ("rowid",))
        if p is None:
            bounds = self.bounds()
            if bounds is None:
                return
            lo, hi = bounds
        else:
            lo, hi = p.first, p.last
        used = [c for c in USED if c in self.columns]
        select = ", ".join(f'"{self.columns[c]}"' for c in used)
        where = [YFCC_FIELDS.index(c) for c in used]
        cur = self._run(
            f'SELECT rowid, {select} FROM "{self.table}" WHERE rowid BETWEEN ? AND ? ORDER BY rowid', (lo, hi)
        )
        while True:
            try:
                rows = cur.fetchmany(batch_rows)
            except sqlite3.DatabaseError as exc:
                raise SourceFormatError(f"{self.path}: unreadable SQLite data ({exc})") from exc
            if not rows:
                return
            out = []
            for r in rows:
                fields = [b""] * len(YFCC_FIELDS)
                for i, v in zip(where, r[1:], strict=True):
                    fields[i] = _as_bytes(v)
                out.append((int(r[0]), fields))
            yield out

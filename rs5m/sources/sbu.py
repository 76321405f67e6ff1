"""SBU Captions: ``sbu-captions-all.json``, one columnar JSON object
``{"image_urls": [...], "captions": [...], "user_ids": [...]}`` (row i = element i of each list),
read in place from ``sbu-captions-all.tar.gz`` (its one JSON member) as distributed, or plain /
``.gz``; locators name the JSON file (``sbu-captions-all.json:<index>``) either way. One piece per file.

SBU has no photo id column: key is null and the ingest driver derives it from url+caption. Extras:
``user_id`` (the Flickr owner). When the lists differ in length the rows past the shortest one cannot
be paired reliably and are rejected as ``malformed_row``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from rs5m.sources._files import peek
from rs5m.sources._pieces import parse_piece
from rs5m.sources._text import RowBuffer, load_json_document
from rs5m.sources.base import AdapterOptions, Keep, LayoutInfo, RawBatch, SourceFormatError, tried


class SbuOptions(AdapterOptions):
    """SBU options (only ``batch_rows``)."""


class SbuAdapter:
    """The columnar SBU JSON file; ``SourceFormatError`` without ``image_urls``/``captions`` lists."""

    name: ClassVar[str] = "sbu"
    options_model: ClassVar[type[AdapterOptions]] = SbuOptions

    def detect(self, path: str, options: SbuOptions) -> LayoutInfo:
        """``sbu-json`` (or ``sbu-json-tar``, ``sbu-json-zip``): a JSON object, from its first bytes
        (its lists are checked when read)."""
        kind, head = peek(path, "*.json")
        if not head.lstrip().startswith(b"{"):
            layouts = {"sbu-json": "a JSON object of lists", "sbu-json-tar": "sbu-captions-all.tar.gz"}
            raise tried(path, "SBU Captions", layouts, "it does not start with a JSON object")
        return LayoutInfo("sbu-json" + (f"-{kind}" if kind in ("zip", "tar") else ""))

    def pieces(self, path: str, options: SbuOptions, rows_per_piece: int) -> list[str]:
        """One piece: a JSON document cannot be split."""
        return [""]

    def read(
        self, path: str, options: SbuOptions, piece: str | None = None, keep: Keep | None = None
    ) -> Iterator[RawBatch]:
        """Yield batches of ``options.batch_rows`` rows, located ``<json file>:<index>``."""
        parse_piece(piece, path, ())
        name, doc = load_json_document(path)
        if not isinstance(doc, dict):
            raise SourceFormatError(f"{path}: expected a JSON object of lists, got {type(doc).__name__}")
        lists = {k: doc.get(k) for k in ("image_urls", "captions", "user_ids") if k in doc}
        missing = [k for k in ("image_urls", "captions") if not isinstance(lists.get(k), list)]
        bad_type = [k for k, v in lists.items() if not isinstance(v, list)]
        if missing or bad_type:
            raise SourceFormatError(
                f"{path}: expected lists 'image_urls' and 'captions'; bad: {missing or bad_type}"
            )
        urls, caps, users = lists["image_urls"], lists["captions"], lists.get("user_ids")
        sizes = {k: len(v) for k, v in lists.items()}
        n = min(sizes.values())
        buf = RowBuffer(path, options.batch_rows, name)
        for i in range(n):
            user = users[i] if users is not None else None
            buf.add(i, None, urls[i], caps[i], extras={"user_id": user} if user is not None else None)
            if buf.full():
                yield buf.take()
        detail = "list lengths differ: " + ", ".join(f"{k}={v}" for k, v in sizes.items())
        for i in range(n, max(sizes.values())):
            buf.reject(i, "malformed_row", detail)
            if buf.full():
                yield buf.take()
        yield from buf.drain()

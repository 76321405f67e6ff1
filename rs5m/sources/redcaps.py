"""RedCaps: ``annotations/<subreddit>_<year>.json``, one JSON document per file:
``{"info": {...}, "annotations": [{image_id, subreddit, url, caption, raw_caption, score, author,
created_utc, permalink}, ...]}``.

Layouts: ``redcaps-json`` (one unpacked annotation file, plain or ``.gz``) and ``redcaps-zip``
(``redcaps_v1.0_annotations.zip`` as distributed, read in place: its ``annotations/*.json`` members in
name order). A zip splits into ``members:`` pieces of whole annotation files (sized from the zip
directory); locators are ``<annotation file>:<index>`` whether it is zipped or not.

key = ``image_id``; caption = ``caption`` (RedCaps' cleaned caption). Extras: subreddit, created_utc
(RS5M derives meta-caption dates from it), score, permalink. Each annotation file is parsed whole (they
are per-subreddit-year, at most a few hundred MB).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import IO, Any, ClassVar

from rs5m.sources._files import iter_members, peek, sniff, zip_members
from rs5m.sources._pieces import group_ranges, parse_piece
from rs5m.sources._text import RowBuffer, load_json_document
from rs5m.sources.base import AdapterOptions, Keep, LayoutInfo, RawBatch, SourceFormatError, tried

_EXTRAS = ("subreddit", "created_utc", "score", "permalink")
_MEMBERS = "*.json"
_ROW_BYTES = 400  # planning estimate: bytes of JSON per annotation (RedCaps entries are ~300-500 B)
_LAYOUTS = {"redcaps-json": "{'annotations': [...]} JSON", "redcaps-zip": "a zip of annotations/*.json"}


class RedcapsOptions(AdapterOptions):
    """RedCaps options (only ``batch_rows``)."""


def _key(v: Any) -> str | None | bool:
    """``image_id`` as text; ``False`` when it has an unusable type."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return False


def _parse(path: str, member: str, f: IO[bytes]) -> Any:
    try:
        return json.load(f)
    except (OSError, EOFError, ValueError) as exc:
        raise SourceFormatError(f"{path}: {member}: not a valid JSON document ({exc})") from exc


class RedcapsAdapter:
    """RedCaps annotation files or the annotations zip. A document that is not JSON or has no
    ``annotations`` list is a ``SourceFormatError``; entries that are not objects or have wrong types
    are ``malformed_row`` located ``<file>:<index in annotations>``."""

    name: ClassVar[str] = "redcaps"
    options_model: ClassVar[type[AdapterOptions]] = RedcapsOptions

    def detect(self, path: str, options: RedcapsOptions) -> LayoutInfo:
        """``redcaps-zip`` (with at least one JSON member) or ``redcaps-json`` (an object whose first
        64 KiB holds the ``annotations`` key)."""
        if sniff(path) == "zip":
            if not zip_members(path, _MEMBERS):
                raise tried(path, "RedCaps", _LAYOUTS, "the zip holds no .json member")
            return LayoutInfo("redcaps-zip")
        _, head = peek(path, _MEMBERS)
        if not (head.lstrip().startswith(b"{") and b'"annotations"' in head):
            raise tried(path, "RedCaps", _LAYOUTS, "no 'annotations' key in its first 64 KiB")
        return LayoutInfo("redcaps-json")

    def pieces(self, path: str, options: RedcapsOptions, rows_per_piece: int) -> list[str]:
        """``members:`` ranges of a zip (about ``rows_per_piece`` annotations each); else ``[""]``."""
        if sniff(path) != "zip":
            return [""]
        sizes = [m.size for m in zip_members(path, _MEMBERS)]
        ranges = group_ranges(sizes, rows_per_piece * _ROW_BYTES)
        return [""] if len(ranges) <= 1 else [f"members:{a}-{b}" for a, b in ranges]

    def read(
        self, path: str, options: RedcapsOptions, piece: str | None = None, keep: Keep | None = None
    ) -> Iterator[RawBatch]:
        """Yield batches of ``options.batch_rows`` annotations (of the file, or of one piece)."""
        if sniff(path) != "zip":
            parse_piece(piece, path, ())
            name, doc = load_json_document(path, _MEMBERS)
            yield from self._document(path, name, doc, options)
            return
        members = zip_members(path, _MEMBERS)
        p = parse_piece(piece, path, ("members",))
        if p is not None:
            if p.last >= len(members):
                raise ValueError(f"{path}: piece {piece!r} past the zip's {len(members)} JSON members")
            members = members[p.first : p.last + 1]
        for member, f in iter_members(path, _MEMBERS, members):
            yield from self._document(path, os.path.basename(member), _parse(path, member, f), options)

    def _document(self, path: str, name: str, doc: Any, options: RedcapsOptions) -> Iterator[RawBatch]:
        entries = doc.get("annotations") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise SourceFormatError(f"{path}: {name}: expected an object with an 'annotations' list")
        buf = RowBuffer(path, options.batch_rows, name)
        for i, e in enumerate(entries):
            if not isinstance(e, dict):
                buf.reject(i, "malformed_row", f"annotation is {type(e).__name__}, not an object")
            else:
                key = _key(e.get("image_id"))
                if key is False:
                    buf.reject(i, "malformed_row", "image_id is not a string or integer")
                else:
                    extras = {k: e.get(k) for k in _EXTRAS if k in e}
                    buf.add(i, key, e.get("url"), e.get("caption"), extras=extras)
            if buf.full():
                yield buf.take()
        yield from buf.drain()

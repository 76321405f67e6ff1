"""RedCaps: ``annotations/<subreddit>_<year>.json``, one JSON document per file:
``{"info": {...}, "annotations": [{image_id, subreddit, url, caption, raw_caption, score, author,
created_utc, permalink}, ...]}``.

key = ``image_id``; caption = ``caption`` (RedCaps' cleaned caption). Extras: subreddit, created_utc
(RS5M derives meta-caption dates from it), score, permalink. Each file is loaded whole (they are
per-subreddit-year, at most a few hundred MB).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from rs5m.sources._text import RowBuffer, load_json_document
from rs5m.sources.base import AdapterOptions, RawBatch, SourceFormatError

_EXTRAS = ("subreddit", "created_utc", "score", "permalink")


class RedcapsOptions(AdapterOptions):
    """RedCaps options (only ``batch_rows``)."""


def _key(v: Any) -> str | None | bool:
    """``image_id`` as text; ``False`` when it has an unusable type."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return False


class RedcapsAdapter:
    """RedCaps annotation files. A file that is not JSON or has no ``annotations`` list is a
    ``SourceFormatError``; entries that are not objects or have wrong types are ``malformed_row``
    located ``<file>:<index in annotations>``."""

    name: ClassVar[str] = "redcaps"
    options_model: ClassVar[type[AdapterOptions]] = RedcapsOptions

    def read(self, path: str, options: RedcapsOptions) -> Iterator[RawBatch]:
        """Yield batches of ``options.batch_rows`` annotations."""
        doc = load_json_document(path)
        entries = doc.get("annotations") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise SourceFormatError(f"{path}: expected an object with an 'annotations' list")
        buf = RowBuffer(path, options.batch_rows)
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

"""Visual Genome: ``image_data.json`` (a list of ``{image_id, url, width, height, coco_id, flickr_id}``;
some releases name the id ``id``) with an optional ``region_descriptions.json`` (a list of
``{"regions": [{region_id, image_id, phrase, x, y, width, height}, ...], "id": image_id}``).

Both are read in place as distributed today, ``image_data.json.zip`` and
``region_descriptions.json.zip`` (one JSON member each), or plain / ``.gz``; locators name the JSON
file (``image_data.json:<index>``) either way. A JSON document cannot be split: one piece per file.

VG has no image caption, and which text RS5M used for it is unknown. The caption here is the image's
distinct region phrases (stripped, compared case-insensitively, first occurrence kept) in region order,
at most ``max_regions`` of them, joined by ``caption_join``: region phrases are VG's only free text,
and the cap (about the mean number of regions per image) bounds caption length. Without a regions file
captions are null and the ingest driver counts them as ``missing_caption``.

key = ``image_id``. Extras: coco_id, flickr_id, n_regions. The regions file is parsed with an object
hook that keeps only (image_id, phrase) per region, so its many numeric fields never pile up in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import Field

from rs5m.sources._files import peek
from rs5m.sources._pieces import parse_piece
from rs5m.sources._text import RowBuffer, as_int, join_sentences, load_json_document
from rs5m.sources.base import AdapterOptions, Keep, LayoutInfo, RawBatch, SourceFormatError, tried


class VgOptions(AdapterOptions):
    """``regions_file``: ``region_descriptions.json`` (plain, ``.gz`` or ``.zip``) or None;
    ``max_regions`` phrases per caption."""

    regions_file: str | None = None
    max_regions: int = Field(default=50, ge=1)
    caption_join: str = ". "


class _Region(tuple):
    """(image_id, phrase) of one region, produced while parsing."""


def _hook(obj: dict[str, Any]) -> Any:
    if "phrase" in obj and "region_id" in obj:
        return _Region((obj.get("image_id"), obj.get("phrase")))
    return obj


def load_region_phrases(path: str, max_regions: int) -> dict[int, tuple[list[str], int]]:
    """``image_id -> (distinct phrases up to max_regions, number of regions)``.

    Raises ``SourceFormatError`` when the file is not a JSON list of ``{"regions": [...]}`` objects.
    """
    _, doc = load_json_document(path, object_hook=_hook)
    if not isinstance(doc, list):
        raise SourceFormatError(f"{path}: expected a list of {{'regions': [...]}} objects")
    acc: dict[int, tuple[list[str], set[str], list[int]]] = {}
    for entry in doc:
        regions = entry.get("regions") if isinstance(entry, dict) else None
        if not isinstance(regions, list):
            continue
        for r in regions:
            img, phrase = (r[0], r[1]) if isinstance(r, _Region) else (None, None)
            img = img if isinstance(img, int) else entry.get("id")
            if not isinstance(img, int) or isinstance(img, bool):
                continue
            phrases, seen, count = acc.setdefault(img, ([], set(), [0]))
            count[0] += 1
            text = phrase.strip() if isinstance(phrase, str) else ""
            if text and len(phrases) < max_regions and text.lower() not in seen:
                phrases.append(text)
                seen.add(text.lower())
    return {img: (phrases, count[0]) for img, (phrases, _, count) in acc.items()}


class VgAdapter:
    """Visual Genome ``image_data.json``, one row per image; caption from region phrases."""

    name: ClassVar[str] = "vg"
    options_model: ClassVar[type[AdapterOptions]] = VgOptions

    def detect(self, path: str, options: VgOptions) -> LayoutInfo:
        """``vg-json`` (or ``vg-json-zip``, ``vg-json-tar``): a JSON list, from its first bytes."""
        kind, head = peek(path, "*.json")
        if not head.lstrip().startswith(b"["):
            layouts = {"vg-json": "image_data.json: a JSON list", "vg-json-zip": "image_data.json.zip"}
            raise tried(path, "Visual Genome image data", layouts, "it does not start with a JSON list")
        return LayoutInfo("vg-json" + (f"-{kind}" if kind in ("zip", "tar") else ""))

    def pieces(self, path: str, options: VgOptions, rows_per_piece: int) -> list[str]:
        """One piece: a JSON document cannot be split."""
        return [""]

    def read(
        self, path: str, options: VgOptions, piece: str | None = None, keep: Keep | None = None
    ) -> Iterator[RawBatch]:
        """Yield batches of ``options.batch_rows`` images, located ``<json file>:<index>``; entries
        that are not objects or lack an integer id are ``malformed_row``."""
        parse_piece(piece, path, ())
        name, doc = load_json_document(path)
        if not isinstance(doc, list):
            raise SourceFormatError(f"{path}: expected a JSON list of image objects")
        regions = (
            load_region_phrases(options.regions_file, options.max_regions) if options.regions_file else {}
        )
        buf = RowBuffer(path, options.batch_rows, name)
        for i, e in enumerate(doc):
            img = e.get("image_id", e.get("id")) if isinstance(e, dict) else None
            if not isinstance(e, dict):
                buf.reject(i, "malformed_row", f"entry is {type(e).__name__}, not an object")
            elif not isinstance(img, int) or isinstance(img, bool):
                buf.reject(i, "malformed_row", "image_id is not an integer")
            else:
                phrases, n = regions.get(img, ([], 0))
                caption = join_sentences(phrases, options.caption_join) if phrases else None
                extras = {"coco_id": e.get("coco_id"), "flickr_id": e.get("flickr_id"), "n_regions": n}
                buf.add(
                    i,
                    str(img),
                    e.get("url"),
                    caption,
                    as_int(e.get("width")),
                    as_int(e.get("height")),
                    extras,
                )
            if buf.full():
                yield buf.take()
        yield from buf.drain()

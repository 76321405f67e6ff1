"""Conceptual Captions: CC12M (``cc12m.tsv``: ``url<TAB>caption``) and CC3M (``Train_GCC-training.tsv``:
``caption<TAB>url``), both headerless, one pair per line, no quoting.

CC3M can be joined with Google's Image Labels file (``Image_Labels_Subset_Train_GCC-Labels-training.tsv``,
headerless ``caption, url, labels, MIDs, confidences``; the last three are comma-separated lists). The
labels file is loaded once per ``read`` into a dict ``url -> tags JSON`` (about 2 M entries for the train
split, a few hundred MB), because the main file cannot be sorted or indexed in place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any, ClassVar

from rs5m.sources._text import RowBuffer, as_float, iter_lines, open_binary, split_tsv
from rs5m.sources.base import AdapterOptions, RawBatch


class CC12MOptions(AdapterOptions):
    """CC12M options (only ``batch_rows``)."""


class CC3MOptions(AdapterOptions):
    """``labels_file``: optional Image Labels TSV; its tags go to extras ``tags: [{tag, prob}]``."""

    labels_file: str | None = None


def _read_pairs(
    path: str, batch_rows: int, url_first: bool, tags: dict[str, str] | None = None
) -> Iterator[RawBatch]:
    """Yield batches of a headerless two-column TSV; blank lines are skipped (they are not samples)."""
    buf = RowBuffer(path, batch_rows)
    with open_binary(path) as f:
        for lineno, raw in iter_lines(path, f):
            if not raw:
                continue
            fields, reason, detail = split_tsv(raw, 2)
            if fields is None:
                buf.reject(lineno, reason, detail)
            else:
                url, caption = fields if url_first else fields[::-1]
                found = tags.get(url) if tags is not None else None
                extras = '{"tags":' + found + "}" if found else None
                buf.add(lineno, None, url, caption, extras=extras, checked=True)
            if buf.full():
                yield buf.take()
    yield from buf.drain()


def load_labels(path: str) -> dict[str, str]:
    """Parse the CC3M Image Labels file into ``url -> JSON text of [{"tag": str, "prob": float|null}]``.

    Values are kept as JSON text, not Python lists, to hold ~2 M entries in a few hundred MB. Lines
    that are not 5 UTF-8 tab-separated fields are skipped: the labels are optional enrichment.
    """
    out: dict[str, str] = {}
    with open_binary(path) as f:
        for _, raw in iter_lines(path, f):
            fields, _, _ = split_tsv(raw, 5)
            if fields is None:
                continue
            _, url, labels, _mids, probs = fields
            names = [t.strip() for t in labels.split(",")]
            scores = [as_float(p) for p in probs.split(",")]
            scores += [None] * (len(names) - len(scores))
            tags: list[dict[str, Any]] = [
                {"tag": t, "prob": p} for t, p in zip(names, scores, strict=False) if t
            ]
            out[url] = json.dumps(tags, ensure_ascii=False)
    return out


class CC12MAdapter:
    """CC12M ``cc12m.tsv``: key null (driver derives it from url+caption), no extras."""

    name: ClassVar[str] = "cc12m"
    options_model: ClassVar[type[AdapterOptions]] = CC12MOptions

    def read(self, path: str, options: CC12MOptions) -> Iterator[RawBatch]:
        """Yield batches of ``options.batch_rows`` lines; bad lines become ``malformed_row`` or
        ``bad_encoding`` rejects located ``<file>:<line>``."""
        yield from _read_pairs(path, options.batch_rows, url_first=True)


class CC3MAdapter:
    """CC3M ``Train_GCC-training.tsv`` (``caption<TAB>url``), optionally joined with Image Labels."""

    name: ClassVar[str] = "cc3m"
    options_model: ClassVar[type[AdapterOptions]] = CC3MOptions

    def read(self, path: str, options: CC3MOptions) -> Iterator[RawBatch]:
        """Yield batches of ``options.batch_rows`` lines; extras ``{"tags": [...]}`` for URLs found in
        ``options.labels_file`` (when set), else null."""
        tags = None
        if options.labels_file:
            if not os.path.exists(options.labels_file):
                raise FileNotFoundError(f"CC3M labels_file not found: {options.labels_file}")
            tags = load_labels(options.labels_file)
        yield from _read_pairs(path, options.batch_rows, url_first=False, tags=tags)

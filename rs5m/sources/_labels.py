"""CC3M Image Labels as a compact per-process index: url -> tags JSON.

The labels cover ~2.0 M CC3M training urls. A Python dict of url strings to JSON texts would take
~0.8 GB in every worker that reads a CC3M piece; here the urls are 64-bit hashes in one sorted numpy
array and the tags JSON texts one bytes blob with offsets (~0.25 GB), loaded once per process and
file version. Lookups are vectorised with ``searchsorted``.

Input: Google's headerless TSV ``caption, url, labels, MIDs, confidences`` (the last three comma
separated; lines that are not 5 UTF-8 fields are skipped: labels are optional enrichment) or the
``labeled`` Hugging Face parquet (``image_url, caption, labels, MIDs, confidence_scores``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from rs5m.sources._arrow import open_parquet
from rs5m.sources._files import single_stream, sniff
from rs5m.sources._text import as_float, iter_lines, split_tsv
from rs5m.sources.base import SourceFormatError


def url_hash(url: str) -> int:
    """A stable signed 64-bit hash of a url (blake2b)."""
    return int.from_bytes(
        hashlib.blake2b(url.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little", signed=True
    )


def tags_json(names: list[Any], probs: list[Any]) -> str:
    """``[{"tag": str, "prob": float|null}, ...]`` for the non-empty tag names."""
    scores = [as_float(p) for p in probs] + [None] * max(0, len(names) - len(probs))
    tags = [
        {"tag": t.strip(), "prob": p}
        for t, p in zip(names, scores, strict=False)
        if isinstance(t, str) and t.strip()
    ]
    return json.dumps(tags, ensure_ascii=False)


class LabelIndex:
    """url -> tags JSON text (``get``), built from ``(url, json)`` pairs; the last pair of a url wins."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        hashes = np.fromiter((url_hash(u) for u, _ in pairs), dtype=np.int64, count=len(pairs))
        # stable sort, then keep each hash's last occurrence
        order = np.argsort(hashes, kind="stable")
        hashes = hashes[order]
        last = np.ones(len(hashes), dtype=bool)
        last[:-1] = hashes[1:] != hashes[:-1]
        keep = order[last]
        texts = [pairs[i][1].encode("utf-8") for i in keep.tolist()]
        self.hashes = hashes[last]
        self.ends = np.cumsum(np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)))
        self.blob = b"".join(texts)

    def __len__(self) -> int:
        return len(self.hashes)

    def get(self, url: str) -> str | None:
        """The tags JSON of ``url``, or ``None``."""
        return self.lookup([url])[0]

    def lookup(self, urls: list[str | None]) -> list[str | None]:
        """Tags JSON (or ``None``) for each url."""
        if not len(self.hashes):
            return [None] * len(urls)
        h = np.fromiter((url_hash(u) if u else 0 for u in urls), dtype=np.int64, count=len(urls))
        pos = np.minimum(np.searchsorted(self.hashes, h), len(self.hashes) - 1)
        hit = (self.hashes[pos] == h) & np.array([bool(u) for u in urls], dtype=bool)
        out: list[str | None] = []
        for i, ok in zip(pos.tolist(), hit.tolist(), strict=True):
            start = int(self.ends[i - 1]) if i else 0
            out.append(self.blob[start : int(self.ends[i])].decode("utf-8") if ok else None)
        return out


def _tsv_pairs(path: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    with single_stream(path, "*", "labels file") as (_, f):  # plain, .gz/.bz2, or alone in a zip/tar
        for _, raw in iter_lines(path, f):
            fields, _, _ = split_tsv(raw, 5)
            if fields is not None:
                _, url, labels, _mids, probs = fields
                pairs.append((url, tags_json(labels.split(","), probs.split(","))))
    return pairs


def _parquet_pairs(path: str) -> list[tuple[str, str]]:
    pf = open_parquet(path)
    names = {n.lower(): n for n in pf.schema_arrow.names}
    url = names.get("image_url") or names.get("url")
    if not url or "labels" not in names:
        raise SourceFormatError(f"{path}: not a CC3M labels parquet (needs image_url and labels columns)")
    cols = [url, names["labels"], *([names["confidence_scores"]] if "confidence_scores" in names else [])]
    pairs: list[tuple[str, str]] = []
    try:
        for batch in pf.iter_batches(columns=cols, batch_size=65_536):
            urls, labels = batch.column(0).to_pylist(), batch.column(1).to_pylist()
            probs = batch.column(2).to_pylist() if len(cols) == 3 else [[]] * len(urls)
            pairs += [
                (u, tags_json(lab or [], p or []))
                for u, lab, p in zip(urls, labels, probs, strict=True)
                if isinstance(u, str)
            ]
    except pa.ArrowException as exc:
        raise SourceFormatError(f"{path}: unreadable labels parquet ({exc})") from exc
    return pairs


def _load(files: tuple[tuple[str, int, int], ...]) -> LabelIndex:
    pairs: list[tuple[str, str]] = []
    for path, _, _ in files:  # size and mtime are cache key only: a rewritten file is reloaded
        pairs += _parquet_pairs(path) if sniff(path) == "parquet" else _tsv_pairs(path)
    return LabelIndex(pairs)


def labels_files(path: str) -> list[str]:
    """The files a ``labels_file`` option names: the file, or a folder's ``*.parquet`` parts (the
    Hugging Face ``labeled`` config comes in three)."""
    if not os.path.isdir(path):
        return [path]
    found = sorted(str(p) for p in Path(path).glob("*.parquet"))
    if not found:
        raise SourceFormatError(f"{path}: a labels folder without .parquet files")
    return found


def load_labels(path: str) -> LabelIndex:
    """The label index of a labels file (TSV, compressed TSV or parquet) or folder of parquet parts,
    cached per process and file versions."""
    files = tuple((f, (st := os.stat(f)).st_size, st.st_mtime_ns) for f in labels_files(path))
    return _cached_load(files)


_cached_load = functools.lru_cache(maxsize=2)(_load)


def tags_array(
    urls: pa.Array, labels: pa.Array | None, probs: pa.Array | None, index: LabelIndex | None
) -> pa.Array:
    """Per-row tags of a CC3M parquet batch as a list<struct<tag, prob>> array (null where none): from
    the batch's own ``labels``/``confidence_scores`` when given, else looked up by url in ``index``."""
    n = len(urls)
    if labels is not None:
        names = _pylist(labels)
        scores = _pylist(probs) if probs is not None else [None] * n
        texts = [
            tags_json(lab, p or []) if isinstance(lab, list) and lab else None
            for lab, p in zip(names, scores, strict=True)
        ]
    elif index is not None:
        texts = index.lookup([u if isinstance(u, str) else None for u in _pylist(urls)])
    else:
        texts = [None] * n
    typ = pa.list_(pa.struct([("tag", pa.string()), ("prob", pa.float64())]))
    return pa.array([json.loads(t) if t else None for t in texts], typ)


def _pylist(arr: pa.Array) -> list[Any]:
    """Python values; a value with invalid UTF-8 becomes ``None`` (it cannot be a tag or a url)."""
    try:
        return arr.to_pylist()
    except UnicodeDecodeError:
        out = []
        for i in range(len(arr)):
            try:
                out.append(arr[i].as_py())
            except UnicodeDecodeError:
                out.append(None)
        return out

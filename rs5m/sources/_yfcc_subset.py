"""OpenAI's YFCC100M subset list (``yfcc100m_subset_data.tsv[.bz2]``, also ``.gz`` or alone in a zip/tar:
``line number, photo id, photo hash`` per line, tab-separated; a header line, if present, is skipped)
as a sorted unique int64 array.

Loaded at most once per worker process and file version (an in-process cache). With ``cache_dir`` the
array is also written there once as ``.npy`` and memory-mapped by every later process, so the ~30
CPU-seconds of bz2 decompression are paid once per machine and the 14.8 M ids (~119 MB) are shared
through the page cache instead of copied into each worker.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from rs5m.sources._files import compression, open_binary, single_stream, sniff
from rs5m.sources.base import SourceFormatError


def _parse(path: str) -> np.ndarray:
    """Stream the id column into one sorted unique int64 array (1 MiB blocks; peak ~3x the final
    array: the chunks, their concatenation, the de-duplicated copy)."""
    try:
        with _stream(path, python=True) as f:
            first = f.readline().rstrip(b"\r\n").split(b"\t")
        col = 1 if len(first) >= 2 else 0
        header = not first[col].strip().isdigit()
        names = [f"c{i}" for i in range(len(first))]
        chunks: list[np.ndarray] = []
        with _stream(path) as f:
            reader = pacsv.open_csv(
                f,
                read_options=pacsv.ReadOptions(column_names=names, skip_rows=int(header), block_size=1 << 20),
                parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
                convert_options=pacsv.ConvertOptions(
                    include_columns=[names[col]], column_types={names[col]: pa.int64()}
                ),
            )
            for batch in reader:
                # a numpy-owned copy, so each 1 MiB Arrow block is freed at once (a zero-copy view
                # would keep every block alive in Arrow's pool until the end)
                chunks.append(batch.column(0).drop_null().to_numpy().copy())
    except (pa.ArrowInvalid, OSError, EOFError, ValueError) as exc:
        raise SourceFormatError(f"{path}: not an OpenAI YFCC subset id list ({exc})") from exc
    ids = np.concatenate(chunks) if chunks else np.empty(0, np.int64)
    del chunks
    if not len(ids):
        raise SourceFormatError(f"{path}: not an OpenAI YFCC subset id list (no photo ids)")
    ids.sort()
    keep = np.empty(len(ids), dtype=bool)
    keep[0] = True
    np.not_equal(ids[1:], ids[:-1], out=keep[1:])
    ids = ids[keep]
    pa.default_memory_pool().release_unused()  # hand the CSV blocks' memory back to the system
    return ids


@contextmanager
def _stream(path: str, python: bool = False) -> Iterator[Any]:
    """The list as a binary stream: Arrow's own (de)compressing reader for plain / ``.gz`` / ``.bz2``
    (no Python in the loop) unless ``python`` (a Python file, for ``readline``), the one member of a
    zip/tar, Python's reader for the rest."""
    if sniff(path) in ("zip", "tar"):
        with single_stream(path, "*", "subset list") as (_, f):
            yield f
    elif compression(path) in ("", "gz", "bz2") and not python:
        with pa.input_stream(path, compression="detect", buffer_size=1 << 20) as f:
            yield f
    else:
        with open_binary(path) as f:
            yield f


def _cached(path: str, size: int, mtime_ns: int, cache_dir: str) -> np.ndarray:
    key = hashlib.sha1(f"{os.path.realpath(path)}|{size}|{mtime_ns}".encode()).hexdigest()[:16]
    target = Path(cache_dir).expanduser() / f"yfcc-subset-{key}.npy"
    if target.exists():
        try:
            return np.load(target, mmap_mode="r")
        except (OSError, ValueError):
            pass  # a damaged cache file is rebuilt below
    ids = _parse(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".npy.tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, ids)
        os.replace(tmp, target)
    except OSError:
        return ids  # an unwritable cache folder: keep the in-process copy
    return np.load(target, mmap_mode="r")  # the written copy, shared through the page cache


@functools.lru_cache(maxsize=2)
def _subset_ids(path: str, mtime_ns: int, size: int, cache_dir: str | None) -> np.ndarray:
    return _cached(path, size, mtime_ns, cache_dir) if cache_dir else _parse(path)


def load_subset(path: str, cache_dir: str | None = None) -> np.ndarray:
    """Sorted unique photo ids of OpenAI's subset list (cached per process and file version; see the
    module docstring for ``cache_dir``)."""
    st = os.stat(path)
    return _subset_ids(path, st.st_mtime_ns, st.st_size, cache_dir)


def in_subset(subset: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Boolean mask: which ``ids`` are in the sorted ``subset``."""
    if not len(subset) or not len(ids):
        return np.zeros(len(ids), dtype=bool)
    pos = np.minimum(np.searchsorted(subset, ids), len(subset) - 1)
    return np.asarray(subset[pos] == ids)

"""Atomic file writes, checksummed JSON and per-partition stats files (the done markers of the pipeline).

A stats file is written last, after every other output of its partition, by an atomic rename. It
carries a sha256 of its own content (``write_sealed_json``), so a partition is finished, and skipped
on rerun, only when its stats file exists, parses, matches its checksum and its counts add up; any other
stats file is corrupt, and ``read_done`` reports the partition as not done (the stage redoes it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

CHECKSUM_KEY = "content_sha256"  # the field of a sealed JSON object: sha256 of every other field
_warned: set[tuple[str, int, int]] = set()  # (path, mtime_ns, size) of corrupt markers already logged
_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (``/proc``), else under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:  # os.umask can only be read by setting it; other threads may create files meanwhile
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def new_file_mode(is_dir: bool = False) -> int:
    """The mode ``open``/``mkdir`` give a new file or folder: 0666 (0777) less the umask."""
    return (0o777 if is_dir else 0o666) & ~current_umask()


@contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only if the block succeeds.

    The result gets the mode a plainly created file (or folder) would: 0666 (0777) less the umask, not the
    0600 of the temporary file.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, new_file_mode(tmp_path.is_dir()))  # a block may have made it a folder
        os.replace(tmp_path, final)
    except OSError as exc:
        if exc.errno is not None and exc.filename is None:  # a failed write knows no path: name it
            exc.filename = str(final)
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as pretty JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str), encoding="utf-8")


def json_checksum(obj: dict[str, Any]) -> str:
    """Hex sha256 of the canonical JSON (sorted keys, compact) of every field of ``obj`` but its checksum."""
    body = {k: v for k, v in obj.items() if k != CHECKSUM_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def write_sealed_json(path: str | os.PathLike[str], obj: dict[str, Any]) -> None:
    """Write ``obj`` as pretty JSON with its checksum under ``CHECKSUM_KEY``, atomically.

    The checksum is taken over the JSON a reader will parse (``default=str`` applied), so
    ``read_sealed_json`` of the file returns exactly that. Raises ``ValueError`` when ``obj`` already
    has a ``CHECKSUM_KEY`` field.
    """
    if CHECKSUM_KEY in obj:
        raise ValueError(f"cannot seal an object that already has a {CHECKSUM_KEY!r} field")
    data = json.loads(json.dumps(obj, default=str))
    write_json(path, {**data, CHECKSUM_KEY: json_checksum(data)})


def read_sealed_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a file written by ``write_sealed_json``; return its object without the checksum field.

    Raises ``ValueError`` naming the file when it cannot be read, is not a JSON object, has no
    checksum, or its checksum does not match its content.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, RecursionError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    stored = data.pop(CHECKSUM_KEY, None)
    if stored is None:
        raise ValueError(f"{path}: no {CHECKSUM_KEY} checksum")
    if stored != json_checksum(data):
        raise ValueError(f"{path}: {CHECKSUM_KEY} checksum mismatch (content changed after it was written)")
    return data


def warn_corrupt(path: str | os.PathLike[str], message: str) -> None:
    """Log ``message`` as a warning once per corrupt done marker (per path, mtime and size)."""
    p = Path(path)
    try:
        st = p.stat()
        key = (str(p), st.st_mtime_ns, st.st_size)
    except OSError:
        key = (str(p), 0, -1)
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", message)


def write_parquet(path: str | os.PathLike[str], table: pa.Table) -> None:
    """Write one Arrow table as a parquet file, atomically."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def file_digest(path: str | os.PathLike[str]) -> str | None:
    """sha256 of a file's bytes, ``None`` when it does not exist.

    A stage records the digest of the stats file of its input (its upstream) and counts as done only
    while that digest is unchanged: a rerun that changed the input (``--retry-failed`` fetching rows
    again, a partition redone) makes every later stage of it run again instead of trusting stale work.
    """
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None

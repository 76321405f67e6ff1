"""Writing kept samples into webdataset shards ``{subset}-{split}-NNNN.tar``.

Contract:
- Every sample becomes one group of tar members (see ``rs5m.shards.layouts``) under a safe key
  derived from its uid; a uid seen twice by one writer raises ``ValueError``.
- Members carry fixed mtime/uid/gid/mode and no user names, so identical inputs in the same order
  give byte-identical shards.
- A shard is written to a temporary name, fsynced, renamed into place, and only then is its manifest
  entry ``_manifest/<shard>.json`` written: an entry exists only for a complete shard.
- If writing fails (a full disk: ``ENOSPC``, ``EDQUOT``, ``EFBIG``, or any other error), the shard in
  progress is aborted: its temp file is deleted (or, where even that fails, truncated and logged; temp
  names start with ``.`` and end in ``.tmp``, so no reader or manifest takes them for shards), it gets
  no manifest entry, and an ``OSError`` without a file name gets the shard's path. Shards already
  closed stay valid; a shard whose entry cannot be written is deleted again.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from rs5m.config import PackageConfig
from rs5m.config.package import LAYOUTS
from rs5m.shards.layouts import layout_members, make_key
from rs5m.shards.manifest import ShardInfo, entry_path, write_entry

_SAFE_PART = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_BLOCK = tarfile.BLOCKSIZE
log = logging.getLogger(__name__)


@dataclass
class Sample:
    """One kept image-text pair to package. ``ext`` is the image format (``jpg``, ``png``, ...)."""

    uid: str
    source: str
    caption: str
    image: bytes
    ext: str
    meta: dict[str, Any] = field(default_factory=dict)


def shard_name(subset: str, split: str, index: int) -> str:
    """File name of shard ``index`` of ``subset``/``split``, e.g. ``pub11-train-0007.tar``."""
    return f"{subset}-{split}-{index:04d}.tar"


def _tar_size(members: list[tuple[str, bytes]]) -> int:
    return sum(_BLOCK + -(-len(data) // _BLOCK) * _BLOCK for _, data in members)


def _file_size(tar_offset: int) -> int:
    """Size of a tar file closed at ``tar_offset``: two zero blocks, padded to a whole record."""
    return -(-(tar_offset + 2 * _BLOCK) // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


class _HashingFile:
    """Write-only file wrapper that hashes and counts what passes through."""

    def __init__(self, raw: io.BufferedWriter) -> None:
        self.raw, self.sha, self.n = raw, hashlib.sha256(), 0

    def write(self, b: bytes) -> int:
        self.sha.update(b)
        self.n += len(b)
        return self.raw.write(b)


def _release(path: Path, exc: OSError) -> None:
    """Free a file of an aborted shard that could not be deleted (truncate it), and log it; never raises."""
    try:
        os.truncate(path, 0)
        outcome = "truncated it to 0 bytes instead"
    except OSError as exc2:
        outcome = f"could not truncate it either ({exc2})"
    log.warning("could not delete %s of an aborted shard (%s); %s", path, exc, outcome)


def _name_path(exc: OSError, path: Path) -> None:
    """Give an ``OSError`` raised by a write (which knows no file name) the shard's path."""
    if exc.filename is None:
        exc.filename = str(path)


class _OpenShard:
    """One shard being written: a temp file, its hash wrapper and the tar stream on top."""

    def __init__(self, final: Path, mtime: int) -> None:
        self.final, self.mtime, self.n = final, mtime, 0
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        self.tmp = Path(tmp)
        self.file = os.fdopen(fd, "wb", buffering=1 << 20)
        self.hfile = _HashingFile(self.file)
        self.tar = tarfile.open(fileobj=self.hfile, mode="w|", format=tarfile.USTAR_FORMAT)

    def add(self, members: list[tuple[str, bytes]]) -> None:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), self.mtime, 0o444
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            self.tar.addfile(info, io.BytesIO(data))
        self.n += 1

    def commit(self, fsync: bool) -> tuple[int, str]:
        self.tar.close()
        self.file.flush()
        if fsync:
            os.fsync(self.file.fileno())
        self.file.close()
        os.chmod(self.tmp, 0o644)  # mkstemp makes 0600; shards are read by other users' training jobs
        os.replace(self.tmp, self.final)
        return self.hfile.n, self.hfile.sha.hexdigest()

    def abort(self) -> None:
        """Close and delete the temp file; never raises, so the error that caused the abort surfaces."""
        # closing the tar flushes its buffer into the temp file we delete next; left open, it would
        # flush later from __del__ into a closed file. On a full disk both flushes fail again: the
        # buffered writer still closes its descriptor, so the failure only needs swallowing.
        for close in (self.tar.close, self.file.close):
            try:
                close()
            except OSError:
                pass
        try:
            self.tmp.unlink(missing_ok=True)
        except OSError as exc:
            _release(self.tmp, exc)


class ShardWriter:
    """Write samples of one subset/split/layout into rolling shards under ``out_dir``.

    Use as a context manager (or call ``close``); ``shards`` lists the ``ShardInfo`` of every
    closed shard. ``n_total`` (if known) lets ``cfg.n_shards`` set the per-shard sample cap.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        subset: str,
        split: str,
        layout: str,
        cfg: PackageConfig | None = None,
        start_index: int = 0,
        n_total: int | None = None,
    ) -> None:
        for part in (subset, split):
            if not _SAFE_PART.match(part):
                raise ValueError(f"subset/split must match {_SAFE_PART.pattern}, got {part!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
        self.out_dir, self.subset, self.split, self.layout = Path(out_dir), subset, split, layout
        self.cfg = cfg or PackageConfig()
        self.max_samples = self.cfg.samples_per_shard(n_total)
        self.index = start_index
        self.shards: list[ShardInfo] = []
        self._keys: set[str] = set()
        self._open: _OpenShard | None = None
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def write(self, sample: Sample) -> None:
        """Append one sample, starting a new shard first when the current one is full."""
        key = make_key(sample.uid)
        if key in self._keys:
            raise ValueError(f"uid {sample.uid!r} (key {key!r}) written twice")
        members = layout_members(
            self.layout, key, sample.uid, sample.source, sample.caption, sample.image, sample.ext, sample.meta
        )
        cur = self._open
        if cur is not None and (
            cur.n >= self.max_samples
            or _file_size(cur.tar.offset + _tar_size(members)) > self.cfg.max_bytes_per_shard
        ):
            self._close_current()
        if self._open is None:
            name = shard_name(self.subset, self.split, self.index)
            entry_path(self.out_dir, name).unlink(missing_ok=True)
            self._open = _OpenShard(self.out_dir / name, self.cfg.tar_mtime)
        try:
            self._open.add(members)
        except BaseException as exc:
            # a member half written leaves the tar unusable: the shard cannot be continued
            if isinstance(exc, OSError):
                _name_path(exc, self._open.final)
            self.abort()
            raise
        self._keys.add(key)

    def _close_current(self) -> None:
        cur, self._open = self._open, None
        if cur is None:
            return
        try:
            n_bytes, sha = cur.commit(self.cfg.fsync)
        except BaseException as exc:
            if isinstance(exc, OSError):
                _name_path(exc, cur.final)
            cur.abort()
            raise
        info = ShardInfo(cur.final.name, self.subset, self.split, self.layout, cur.n, n_bytes, sha)
        try:
            write_entry(self.out_dir, info)
        except BaseException as exc:
            if isinstance(exc, OSError):
                _name_path(exc, entry_path(self.out_dir, info.name))
            # a shard without its entry is not done; leave no finished-looking tar behind
            try:
                cur.final.unlink(missing_ok=True)
            except OSError as exc2:
                _release(cur.final, exc2)
            raise
        self.shards.append(info)
        self.index += 1

    def close(self) -> list[ShardInfo]:
        """Close the shard in progress and return every shard written."""
        self._close_current()
        return self.shards

    def abort(self) -> None:
        """Delete the shard in progress (closed shards stay); never raises."""
        cur, self._open = self._open, None
        if cur is not None:
            cur.abort()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_shards(
    samples: Iterable[Sample],
    out_dir: str | os.PathLike[str],
    subset: str,
    split: str,
    layout: str,
    cfg: PackageConfig | None = None,
    start_index: int = 0,
    n_total: int | None = None,
) -> list[ShardInfo]:
    """Write ``samples`` as ``{subset}-{split}-NNNN.tar`` shards in ``layout``; return their infos."""
    with ShardWriter(out_dir, subset, split, layout, cfg, start_index, n_total) as writer:
        for sample in samples:
            writer.write(sample)
    return writer.shards

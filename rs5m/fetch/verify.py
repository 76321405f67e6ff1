"""Checksums of fetched files: streaming hashers, whole-file hashes and the one-line mismatch report."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

CHECKSUM_KEYS = ("sha256", "md5", "git_sha1")
_BLOCK = 1 << 22


class Hashers:
    """sha256 always (the manifest records it), plus md5 when one is expected."""

    def __init__(self, want_md5: bool = False) -> None:
        self._h = {"sha256": hashlib.sha256()}
        if want_md5:
            self._h["md5"] = hashlib.md5(usedforsecurity=False)

    def update(self, data: bytes) -> None:
        """Feed ``data`` to every hasher."""
        for h in self._h.values():
            h.update(data)

    def feed_file(self, path: str | os.PathLike[str], limit: int | None = None) -> None:
        """Feed the first ``limit`` bytes (all when ``None``) of ``path`` (a resumed ``.part``)."""
        left = limit
        with open(path, "rb") as fh:
            while left is None or left > 0:
                block = fh.read(_BLOCK if left is None else min(_BLOCK, left))
                if not block:
                    break
                self.update(block)
                if left is not None:
                    left -= len(block)

    def digests(self) -> dict[str, str]:
        """Hex digests by algorithm name."""
        return {k: h.hexdigest() for k, h in self._h.items()}


def git_blob_sha1(path: str | os.PathLike[str]) -> str:
    """The git blob id of a file (what the Hub lists as ``oid`` of a file not stored in LFS)."""
    size = Path(path).stat().st_size
    h = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def hash_file(path: str | os.PathLike[str], expected: dict[str, Any]) -> dict[str, str]:
    """sha256 of ``path`` plus every other checksum named (non-``None``) in ``expected``."""
    hashers = Hashers(want_md5=expected.get("md5") is not None)
    hashers.feed_file(path)
    out = hashers.digests()
    if expected.get("git_sha1") is not None:
        out["git_sha1"] = git_blob_sha1(path)
    return out


def mismatch(actual_size: int, digests: dict[str, str], expected: dict[str, Any]) -> str | None:
    """What differs from ``expected`` (size first, then each published checksum), or ``None``."""
    want_size = expected.get("size")
    if want_size is not None and actual_size != want_size:
        return f"size {actual_size:,} bytes, expected {want_size:,}"
    for key in CHECKSUM_KEYS:
        want = expected.get(key)
        if want is not None and digests.get(key) != want:
            return f"{key} {digests.get(key)}, expected {want}"
    return None

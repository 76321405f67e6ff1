"""Reading shards: URL expansion, streaming tar iteration, grouping members into samples.

Tars are read as a stream (no seeking), so the same code reads local files, ``pipe:`` commands and
HTTP URLs (the latter two through ``webdataset.gopen``).
"""

from __future__ import annotations

import glob
import os
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import braceexpand

from rs5m.shards.layouts import Record, split_name, to_record

_READ_BUFFER = 1 << 20


def expand_urls(urls_or_dir: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[str]:
    """Expand shard sources into a list of URLs.

    Accepts a directory (its ``*.tar`` files, sorted), a glob pattern, a brace pattern
    (``pub11-train-{0000..0031}.tar``), several of these joined by ``::``, or a list of any of them.
    Raises ``ValueError`` when nothing is found.
    """
    if isinstance(urls_or_dir, (str, os.PathLike)):
        items = str(urls_or_dir).split("::")
    else:
        items = [str(u) for u in urls_or_dir]
    out: list[str] = []
    for item in items:
        for url in braceexpand.braceexpand(item):
            if "://" in url or url.startswith("pipe:"):
                out.append(url)
            elif os.path.isdir(url):
                out.extend(sorted(str(p) for p in Path(url).glob("*.tar")))
            elif any(c in url for c in "*?["):
                out.extend(sorted(glob.glob(url)))
            else:
                out.append(url)
    if not out:
        raise ValueError(f"no shards found in {urls_or_dir!r}")
    return out


def open_shard(url: str) -> BinaryIO:
    """Open one shard for streaming reads; local paths directly, anything else via ``webdataset.gopen``."""
    if "://" in url or url.startswith("pipe:"):
        from webdataset import gopen

        return gopen.gopen(url, "rb")
    return open(url, "rb", buffering=_READ_BUFFER)  # noqa: SIM115 - closed by the caller


def iter_members(stream: BinaryIO) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, data)`` for each regular member of a tar stream, skipping ``__meta__`` members."""
    tar = tarfile.open(fileobj=stream, mode="r|")
    try:
        for info in tar:
            if not info.isreg():
                continue
            base = info.name.rsplit("/", 1)[-1]
            if base.startswith("__") and base.endswith("__"):
                continue
            fobj = tar.extractfile(info)
            data = fobj.read() if fobj is not None else b""
            # stream mode keeps every TarInfo otherwise; shards hold 10^5 members
            tar.members = []
            yield info.name, data
    finally:
        tar.close()


def group_members(members: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Group consecutive members sharing a key into ``(key, {suffix: data})``.

    Members without a suffix are ignored; a suffix repeated within one key raises ``ValueError``.
    """
    key: str | None = None
    current: dict[str, bytes] = {}
    for name, data in members:
        parts = split_name(name)
        if parts is None:
            continue
        k, suffix = parts
        if k != key:
            if key is not None and current:
                yield key, current
            key, current = k, {}
        if suffix in current:
            raise ValueError(f"duplicate member {name!r} in one sample")
        current[suffix] = data
    if key is not None and current:
        yield key, current


def iter_shard_samples(url: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield the grouped samples of one shard, closing it afterwards."""
    with open_shard(url) as stream:
        yield from group_members(iter_members(stream))


def iter_records(
    urls_or_dir: str | os.PathLike[str] | Iterable[str], layout: str = "auto"
) -> Iterator[Record]:
    """Yield every sample of the given shards as a ``Record`` (in file order; no shuffling)."""
    for url in expand_urls(urls_or_dir):
        for key, members in iter_shard_samples(url):
            yield to_record(key, members, layout)

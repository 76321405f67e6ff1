"""Fuzzed input shards through ``rs5m.pipeline.download.stage.iter_shard_images``.

Tars hold members named ``../x.jpg``, ``/abs/x.jpg``, duplicates, empty, NUL-free unicode and very long
names, of every member type (files, directories, symlinks and hard links pointing out of the tree,
character devices, FIFOs); some tars are truncated or are not tars at all.

Properties: nothing is written to disk (the working folder and the shard's folder list the same before
and after); only regular-file members with an image extension and a wanted stem are returned, with their
exact bytes; a file that is not a (whole) tar raises ``tarfile.TarError`` (or ``EOFError`` for a
cut compressed stream, as the standard library reports it) and nothing else.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from rs5m.pipeline.download.stage import iter_shard_images
from tests.faults import fuzz_settings, record, tree

_TYPES = [tarfile.REGTYPE, tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE]
_TYPES += [tarfile.CHRTYPE, tarfile.FIFOTYPE]
_names = st.one_of(
    st.sampled_from(
        [
            "000001.jpg",
            "000001.jpg",
            "../000002.jpg",
            "../../etc/000003.png",
            "/tmp/000004.jpg",
            "/000005.JPG",
            "a/../../000006.webp",
            ".jpg",
            "000007",
            "000008.txt",
            "000009.json",
            "./000010.gif",
            "x" * 300 + ".jpg",
        ]
    ),
    st.text(
        st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1, max_size=20
    ).map(lambda s: s + ".png"),
)


@st.composite
def shard(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, int, bytes]]]:
    """Tar bytes and ``(name, type, content)`` of each member written."""
    members = draw(st.lists(st.tuples(_names, st.sampled_from(_TYPES), st.binary(max_size=64)), max_size=10))
    buf = io.BytesIO()
    fmt = draw(st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
    written = []
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, kind, content in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = draw(st.sampled_from(["/etc/passwd", "../../outside.jpg", "000001.jpg"]))
            if kind == tarfile.REGTYPE:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                tar.addfile(info)
            written.append((name, kind, content))
    return buf.getvalue(), written


def _expected(written: list[tuple[str, int, bytes]], keys: set[str]) -> list[tuple[str, bytes]]:
    exts = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
    out = []
    for name, kind, content in written:
        stem, dot, ext = name.rpartition(".")
        if kind == tarfile.REGTYPE and dot and f".{ext.lower()}" in exts and stem in keys:
            out.append((stem, content))
    return out


@fuzz_settings(150)
@given(
    made=shard(),
    extra_keys=st.sets(st.sampled_from(["000001", "../000002", "/tmp/000004", "/000005", "zzz"])),
    damage=st.sampled_from(["none", "none", "none", "truncate", "garbage", "gzip-garbage"]),
    cut=st.integers(0, 10_000),
)
def test_iter_shard_images_never_writes_or_trusts_names(
    made: tuple[bytes, list[tuple[str, int, bytes]]], extra_keys: set[str], damage: str, cut: int
) -> None:
    """Only wanted regular image members come back, byte-exact; nothing lands on disk."""
    data, written = made
    if damage == "truncate":
        data = data[: cut % max(len(data), 1)]
    elif damage == "garbage":
        data = os.urandom(cut % 700)
    elif damage == "gzip-garbage":
        data = b"\x1f\x8b\x08\x00" + os.urandom(cut % 100)
    keys = {n.rpartition(".")[0] for n, _, _ in written} | extra_keys
    root = Path(tempfile.mkdtemp(prefix="rs5m-tarfuzz-"))
    work = root / "work"
    work.mkdir()
    shard_path = work / "00000.tar"
    shard_path.write_bytes(data)
    before, cwd_before = tree(root), set(os.listdir(os.getcwd()))
    old_cwd = os.getcwd()
    try:
        os.chdir(work)  # relative member names would land here if anything extracted them
        try:
            got = list(iter_shard_images(shard_path, keys))
            error = None
        except (tarfile.TarError, EOFError) as exc:  # EOFError: a cut gzip stream (stdlib)
            got, error = [], exc
        except Exception as exc:
            record("tars", handled=False, crash=True, detail=f"{type(exc).__name__}: {exc}"[:200])
            raise
    finally:
        os.chdir(old_cwd)
    written_now = (tree(root) - before) | (set(os.listdir(os.getcwd())) - cwd_before)
    try:
        ok = not written_now and (error is not None or damage != "none")
        if error is None:
            if damage == "none":
                ok = got == _expected(written, keys)
            else:
                # A damaged tar may still yield a prefix of its members before the damage.
                ok = not written_now and all(item in _expected(written, keys) for item in got)
        record("tars", handled=ok and not written_now, outside=len(written_now))
        assert not written_now, written_now
        assert ok, (damage, got, error)
    finally:
        shutil.rmtree(root, ignore_errors=True)

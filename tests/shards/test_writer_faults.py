"""Shard writer on a full disk: the shard in progress is aborted cleanly, finished shards stay valid.

The disk is simulated by ``os`` as seen by ``rs5m.shards.writer``: files whose raw writes stop, after a
partial write, with the chosen errno once a byte budget is spent. One test uses the kernel instead:
``RLIMIT_FSIZE`` in a child process (``SIGXFSZ`` ignored) makes the write fail with ``EFBIG``.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rs5m.config import PackageConfig
from rs5m.shards import Sample, iter_records, write_shards
from rs5m.shards import writer as writer_mod
from rs5m.shards.manifest import ENTRY_DIR, file_sha256, read_entries
from rs5m.shards.tario import iter_shard_samples

CFG = PackageConfig(max_samples_per_shard=4, fsync=False)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class _Disk:
    """A byte budget shared by every file the writer opens; ``buffer`` replaces the writer's buffer size."""

    def __init__(self, left: int, err: int = errno.ENOSPC, buffer: int | None = None) -> None:
        self.left, self.err, self.buffer, self.hits = left, err, buffer, 0


class _Os:
    def __init__(self, disk: _Disk) -> None:
        self.disk = disk

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def fdopen(self, fd: int, mode: str = "r", buffering: int = -1) -> io.BufferedWriter:
        disk = self.disk

        class Raw(io.FileIO):
            def write(self, b: Any) -> int:
                data = memoryview(b).cast("B")
                if disk.left <= 0:
                    disk.hits += 1
                    raise OSError(disk.err, os.strerror(disk.err))
                data = data[: disk.left]
                disk.left -= len(data)
                return super().write(data)

        return io.BufferedWriter(Raw(fd, mode), disk.buffer or buffering)


def _shard_bytes(samples: list[Sample], tmp: Path) -> list[int]:
    """Sizes of the shards an undisturbed write of ``samples`` produces."""
    return [i.bytes for i in write_shards(samples, tmp, "pub11", "train", "rs5m", CFG)]


def _assert_only_complete(out: Path, names: list[str]) -> None:
    """``out`` holds exactly the shards ``names``, each matching its entry, and no temp file."""
    entries = read_entries(out)
    assert [e.name for e in entries] == names
    for e in entries:
        assert (out / e.name).stat().st_size == e.bytes and file_sha256(out / e.name) == e.sha256
        assert sum(1 for _ in iter_shard_samples(str(out / e.name))) == e.n_samples
    assert sorted(p.name for p in out.iterdir() if p.name != ENTRY_DIR) == names


@pytest.mark.parametrize("err", DISK_FULL)
@pytest.mark.parametrize("buffer", [None, 4096], ids=["fails-at-commit", "fails-while-adding"])
def test_full_disk_in_first_shard_leaves_nothing(
    tmp_path: Path, samples, monkeypatch: pytest.MonkeyPatch, err: int, buffer: int | None
) -> None:
    src = samples(10)
    first = _shard_bytes(src, tmp_path / "ref")[0]
    disk = _Disk(first // 2, err, buffer)
    monkeypatch.setattr(writer_mod, "os", _Os(disk))
    out = tmp_path / "out"
    with pytest.raises(OSError) as info:
        write_shards(src, out, "pub11", "train", "rs5m", CFG)
    assert disk.hits >= 1 and info.value.errno == err
    assert info.value.filename == str(out / "pub11-train-0000.tar")
    _assert_only_complete(out, [])


@pytest.mark.parametrize("buffer", [None, 4096], ids=["fails-at-commit", "fails-while-adding"])
def test_full_disk_in_later_shard_keeps_finished_ones(
    tmp_path: Path, samples, monkeypatch: pytest.MonkeyPatch, buffer: int | None
) -> None:
    src = samples(11)
    sizes = _shard_bytes(src, tmp_path / "ref")
    disk = _Disk(sizes[0] + sizes[1] + sizes[2] // 2, buffer=buffer)
    monkeypatch.setattr(writer_mod, "os", _Os(disk))
    out = tmp_path / "out"
    with pytest.raises(OSError) as info:
        write_shards(src, out, "pub11", "train", "rs5m", CFG)
    assert disk.hits >= 1 and info.value.errno == errno.ENOSPC
    assert info.value.filename == str(out / "pub11-train-0002.tar")
    _assert_only_complete(out, ["pub11-train-0000.tar", "pub11-train-0001.tar"])
    assert [file_sha256(out / n) for n in ("pub11-train-0000.tar", "pub11-train-0001.tar")] == [
        file_sha256(tmp_path / "ref" / n) for n in ("pub11-train-0000.tar", "pub11-train-0001.tar")
    ]


def test_temp_file_that_cannot_be_deleted_is_truncated(
    tmp_path: Path, samples, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    src = samples(3)
    disk = _Disk(2000, buffer=1024)
    monkeypatch.setattr(writer_mod, "os", _Os(disk))
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self.name.endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    with caplog.at_level(logging.WARNING, logger=writer_mod.__name__), pytest.raises(OSError) as info:
        write_shards(src, tmp_path, "pub11", "train", "rs5m", CFG)
    assert info.value.errno == errno.ENOSPC and info.value.filename.endswith("pub11-train-0000.tar")
    temps = list(tmp_path.glob(".pub11-train-0000.tar.*.tmp"))
    assert len(temps) == 1 and temps[0].stat().st_size == 0  # the space is given back anyway
    assert "could not delete" in caplog.text and "truncated" in caplog.text
    assert read_entries(tmp_path) == [] and not list(tmp_path.glob("*.tar"))
    with pytest.raises(ValueError, match="no shards"):  # readers never take the temp file for a shard
        list(iter_records(tmp_path))


def test_entry_that_cannot_be_written_deletes_its_shard(
    tmp_path: Path, samples, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = writer_mod.write_entry

    def write_entry(out: Path, info: Any) -> None:
        calls.append(info.name)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(out, info)

    monkeypatch.setattr(writer_mod, "write_entry", write_entry)
    with pytest.raises(OSError) as info:
        write_shards(samples(10), tmp_path, "pub11", "train", "rs5m", CFG)
    assert info.value.filename == str(tmp_path / ENTRY_DIR / "pub11-train-0001.tar.json")
    _assert_only_complete(tmp_path, ["pub11-train-0000.tar"])


_CHILD = """
import json, sys
from rs5m.shards import PackageConfig, Sample, write_shards
cfg = PackageConfig(max_samples_per_shard=2, fsync=False)
small = [Sample(f"u{i}", "wit", "c", b"x" * 1000, "jpg") for i in range(4)]
big = [Sample("u-big", "wit", "c", b"y" * int(sys.argv[2]), "jpg")]
try:
    write_shards(small + big, sys.argv[1], "pub11", "train", "open_clip", cfg)
except OSError as exc:
    print(json.dumps({"errno": exc.errno, "filename": exc.filename}))
"""


def _limit_file_size(n: int) -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death by signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (n, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_kernel_file_size_limit_in_a_later_shard(tmp_path: Path) -> None:
    limit = 64 * 1024
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path), str(2 * limit)],
        preexec_fn=lambda: _limit_file_size(limit),
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got == {"errno": errno.EFBIG, "filename": str(tmp_path / "pub11-train-0002.tar")}
    _assert_only_complete(tmp_path, ["pub11-train-0000.tar", "pub11-train-0001.tar"])

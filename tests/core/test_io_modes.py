"""Atomically written files get the mode any tool gives them (0666 less the umask), not 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from rs5m.core.io import atomic_path, current_umask, write_json, write_parquet, write_sealed_json


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077])
def test_atomic_writes_honour_the_umask(tmp_path: Path, mask: int) -> None:
    os.umask(mask)
    assert current_umask() == mask
    write_json(tmp_path / "a.json", {"a": 1})
    write_sealed_json(tmp_path / "b.json", {"b": 2})
    write_parquet(tmp_path / "c.parquet", pa.table({"x": [1]}))
    with atomic_path(tmp_path / "d.txt") as tmp:
        tmp.write_text("d", encoding="utf-8")
    for name in ("a.json", "b.json", "c.parquet", "d.txt"):
        assert _mode(tmp_path / name) == 0o666 & ~mask, name
    plain = tmp_path / "plain.txt"
    plain.write_text("p", encoding="utf-8")
    assert _mode(tmp_path / "d.txt") == _mode(plain)  # the same as a file written by hand


@pytest.mark.usefixtures("umask")
def test_a_folder_put_in_place_gets_the_folder_mode(tmp_path: Path) -> None:
    os.umask(0o002)
    with atomic_path(tmp_path / "part") as tmp:
        tmp.unlink()
        tmp.mkdir()
        (tmp / "x").write_text("x", encoding="utf-8")
    assert _mode(tmp_path / "part") == 0o775


@pytest.mark.usefixtures("umask")
def test_a_failed_block_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "e.json") as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []

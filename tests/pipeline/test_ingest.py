"""Ingest driver: common checks, uids, duplicate records, partition roll-over, rejects, resume."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rs5m.config import IngestConfig, SourceInput
from rs5m.core.schema import SAMPLE_SCHEMA, make_uid
from rs5m.core.stats import PartitionStats
from rs5m.pipeline import ingest
from rs5m.sources.base import AdapterOptions, RawBatch, RawReject, raw_table


class FakeAdapter:
    name = "cc12m"
    options_model = AdapterOptions
    calls = 0

    def read(
        self, path: str, options: AdapterOptions, piece: str | None = None, keep=None
    ) -> Iterator[RawBatch]:
        FakeAdapter.calls += 1
        yield RawBatch(
            raw_table(
                {
                    "key": [None, None, None, None, None, "id7"],
                    "url": [
                        "http://a/1.jpg",
                        " https://a/2.jpg ",
                        "ftp://a/3.jpg",
                        "",
                        "http://a/1.jpg",
                        "HTTP://b/x",
                    ],
                    "caption": ["aerial view", "x", "y", "z", "aerial view", "  "],
                }
            ),
            [RawReject(locator="f.tsv:9", reason="malformed_row", detail="1 field")],
        )
        yield RawBatch(raw_table({"key": ["id8"], "url": ["http://c/8.png"], "caption": ["eight"]}))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeAdapter:
    monkeypatch.setattr(ingest, "get_adapter", lambda name: FakeAdapter())
    monkeypatch.chdir(tmp_path)
    Path("f.tsv").write_text("(the fake adapter does not read it)")
    FakeAdapter.calls = 0
    return FakeAdapter()


def test_ingest_counts_every_row_once(tmp_path: Path, fake: FakeAdapter) -> None:
    src = SourceInput(name="cc12m", files=["f.tsv"])
    stats = ingest.ingest_file(src, "f.tsv", tmp_path, IngestConfig(keep_all_rows=True))
    assert stats.n_in == 8 and stats.n_out == 4
    assert stats.removed == {
        "malformed_row": 1,
        "bad_url": 1,
        "missing_url": 1,
        "missing_caption": 1,
    }
    paths = ingest.ingest_paths(tmp_path, "cc12m", "f.tsv")
    table = pq.read_table(paths.output).cast(SAMPLE_SCHEMA)
    assert table.num_rows == 4  # an exact duplicate record is kept here: the keyword stage removes it
    assert table.column("url").to_pylist()[:2] == ["http://a/1.jpg", "https://a/2.jpg"]  # whitespace trimmed
    assert table.column("uid")[0].as_py() == make_uid("cc12m", "http://a/1.jpg\x00aerial view")
    rejects = pq.read_table(paths.rejects).to_pylist()
    assert sorted(r["reason"] for r in rejects) == sorted(stats.removed)
    assert any(r["uid"] == "cc12m-f.tsv:9" for r in rejects)


def test_ingest_resumes_from_stats_file(tmp_path: Path, fake: FakeAdapter) -> None:
    src = SourceInput(name="cc12m", files=["f.tsv"])
    first = ingest.ingest_file(src, "f.tsv", tmp_path, IngestConfig())
    second = ingest.ingest_file(src, "f.tsv", tmp_path, IngestConfig())
    assert FakeAdapter.calls == 1
    assert first == second
    assert isinstance(
        PartitionStats.read(ingest.ingest_paths(tmp_path, "cc12m", "f.tsv").stats), PartitionStats
    )


def test_failed_ingest_leaves_no_done_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(FakeAdapter):
        def read(self, path: str, options: AdapterOptions, piece=None, keep=None) -> Iterator[RawBatch]:
            yield from super().read(path, options)
            raise OSError(errno.EIO, "disk gone")  # a real I/O error has an errno

    monkeypatch.setattr(ingest, "get_adapter", lambda name: Broken())
    monkeypatch.chdir(tmp_path)
    Path("f.tsv").write_text("")
    src = SourceInput(name="cc12m", files=["f.tsv"])
    with pytest.raises(OSError, match="disk gone"):
        ingest.ingest_file(src, "f.tsv", tmp_path, IngestConfig(keep_all_rows=True))
    paths = ingest.ingest_paths(tmp_path, "cc12m", "f.tsv")
    assert not paths.stats.exists()
    assert not list(paths.output.parent.glob(".*.tmp")) and not paths.output.exists()

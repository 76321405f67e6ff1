"""A parquet input with damaged data pages is one SourceFormatError naming the file (issue #17 item 11)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rs5m.config import IngestConfig, SourceInput
from rs5m.pipeline import ingest
from rs5m.sources.base import SourceFormatError


def _damaged_parquet(path: Path) -> None:
    n = 2000
    table = pa.table(
        {
            "SAMPLE_ID": pa.array(range(n), pa.int64()),
            "URL": [f"http://example.com/{i}.jpg" for i in range(n)],
            "TEXT": [f"an aerial view of field {i}" for i in range(n)],
        }
    )
    pq.write_table(table, path, compression="snappy")
    data = bytearray(path.read_bytes())
    meta = pq.ParquetFile(path).metadata.row_group(0)
    start = min(meta.column(i).data_page_offset for i in range(meta.num_columns))
    for i in range(start, start + 64):  # the page header of the first column chunk: footer intact
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def test_damaged_data_pages_name_the_file(tmp_path: Path) -> None:
    src = tmp_path / "part-00000.parquet"
    _damaged_parquet(src)
    source = SourceInput(name="laion2b", files=[str(src)])
    with pytest.raises(SourceFormatError) as info:
        ingest.ingest_file(source, str(src), tmp_path / "versions" / "v1", IngestConfig())
    text = str(info.value)
    assert text.startswith(f"{src}: cannot read this laion2b file: "), text
    assert "\n" not in text and isinstance(info.value, ValueError)  # a ValueError: not retried
    assert not list((tmp_path / "versions").rglob("*.parquet"))  # nothing half-written is left


def test_an_error_of_the_os_keeps_its_own_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "in.parquet"
    src.write_bytes(b"")

    def eio(*args: object, **kwargs: object) -> None:
        raise OSError(5, "Input/output error", str(src))

    monkeypatch.setattr(
        ingest, "get_adapter", lambda name: type("A", (), {"options_model": dict, "read": eio})()
    )
    with pytest.raises(OSError) as info:
        list(ingest.iter_batches(SourceInput(name="laion2b", files=[str(src)]), str(src)))
    assert info.value.errno == 5 and not isinstance(info.value, SourceFormatError)

"""Pieces: for every splittable format, reading all pieces of a file gives exactly the rows and rejects
(same locators) of reading it whole; unsplittable formats are one piece; bad specs are one-line errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rs5m.sources import get_adapter
from rs5m.sources.wit import WIT_COLUMNS

from .helpers import read_all, read_pieces
from .test_today_files import _yfcc_values, yfcc_sqlite


def _same(name: str, path: Path, rows_per_piece: int, **options: object) -> list[str]:
    whole = read_all(name, path, **options)
    pieces, rows, rejects = read_pieces(name, path, rows_per_piece, **options)
    assert (rows, rejects) == whole, f"{name}: pieces {pieces} differ from the whole file"
    assert whole[0] and whole[1], "the file should have both rows and rejects"
    return pieces


def test_parquet_row_group_pieces(tmp_path: Path) -> None:
    n = 11
    bad = pa.array([b"ok %d" % i if i % 4 else b"bad \xff" for i in range(n)]).view(pa.string())
    table = pa.table(
        {"url": [f"http://p/{i}.jpg" for i in range(n)], "caption": bad, "key": [str(i) for i in range(n)]}
    )
    path = tmp_path / "part-00000.parquet"
    pq.write_table(table, path, row_group_size=2)
    pieces = _same("laion2b", path, 4, batch_rows=3)
    assert pieces == ["rg:0-1", "rg:2-3", "rg:4-5"]  # 6 row groups of 2 rows (the last: 1), 4 per piece
    coco = tmp_path / "coco.parquet"
    captions = pa.array([b"an aerial view" if i % 3 else b"bro\xc3ken" for i in range(n)]).view(pa.string())
    lists = pa.ListArray.from_arrays(pa.array(range(n + 1), pa.int32()), captions)
    pq.write_table(
        table.append_column("all_captions", lists).rename_columns(["URL", "TEXT", "key", "all_captions"]),
        coco,
        row_group_size=3,
    )
    assert _same("laioncoco", coco, 6) == ["rg:0-1", "rg:2-3"]
    assert get_adapter("coyo700m").pieces(
        str(path), get_adapter("coyo700m").options_model(columns={"caption": "caption"}), 100
    ) == [""]


def _cc12m_bytes() -> bytes:
    lines = [b"https://e/%d.jpg\tcaption %d" % (i, i) for i in range(40)]
    lines[5] = b"no tab"
    lines[17] = b""
    lines[23] = b"https://e/23.jpg\tbad \xe9 byte\r"
    lines[31] = b"https://e/31.jpg\ttoo\tmany"
    return b"\n".join(lines)  # no final newline


def test_text_byte_pieces_at_every_split(tmp_path: Path) -> None:
    path = tmp_path / "cc12m.tsv"
    data = _cc12m_bytes()
    path.write_bytes(data)
    pieces = _same("cc12m", path, 7)
    assert len(pieces) >= 5 and all(p.startswith("bytes:") for p in pieces)
    starts = [int(p.split(":")[1].split("-")[0]) for p in pieces]
    assert all(s == 0 or data[s - 1 : s] == b"\n" for s in starts)  # aligned to line starts
    whole = read_all("cc12m", path)
    for k in range(0, len(data) + 1, 3):  # any two ranges, aligned or not, cover the file exactly once
        a = read_all("cc12m", path, f"bytes:0-{k}")
        b = read_all("cc12m", path, f"bytes:{k}-{len(data)}")
        assert (a[0] + b[0], a[1] + b[1]) == whole, k


def test_text_pieces_with_a_header(tmp_path: Path) -> None:
    cc3m = tmp_path / "GCC-training.tsv"
    cc3m.write_bytes(
        b"caption\turl\n" + b"".join(b"c %d\thttps://f/%d.jpg\n" % (i, i) for i in range(30)) + b"broken\n"
    )
    pieces = _same("cc3m", cc3m, 4)
    assert len(pieces) > 3
    wit = tmp_path / "wit_v1.train.all-00000-of-00010.tsv"
    lines = ["\t".join(WIT_COLUMNS)]
    for i in range(30):
        values = {
            "language": "en" if i % 3 else "fr",
            "image_url": f"https://u/{i}.jpg",
            "caption_reference_description": f"c{i}",
        }
        lines.append("\t".join(values.get(c, "") for c in WIT_COLUMNS))
    wit.write_text("\n".join(lines) + "\n")
    assert len(_same("wit", wit, 5)) > 3
    gz = tmp_path / "wit_v1.train.all-00001-of-00010.tsv.gz"
    gz.write_bytes(gzip.compress(wit.read_bytes()))
    assert _same("wit", gz, 5) == [""]  # compressed text cannot be split
    with pytest.raises(ValueError, match="does not apply to this file"):
        read_all("wit", gz, "bytes:0-10")


def test_yfcc_tsv_and_sqlite_pieces(tmp_path: Path) -> None:
    values = [_yfcc_values(100 + i, f"photo+{i}", marker="1" if i % 7 == 0 else "0") for i in range(25)]
    values[4]["photoid"] = "x4"
    tsv = tmp_path / "yfcc100m_dataset-0"
    tsv.write_text(
        "".join(
            f"{i}\t" + "\t".join(str(v[c] or "") for c in v).replace("\t", "\thash\t", 1) + "\n"
            for i, v in enumerate(values)
        )
    )
    subset = tmp_path / "subset.tsv"
    subset.write_text("".join(f"{i}\t{100 + i}\th\n" for i in range(0, 25, 2)))
    assert len(_same("yfcc15m", tsv, 6, subset_file=str(subset))) > 2
    db = yfcc_sqlite(tmp_path / "yfcc100m_dataset.sql", values)
    pieces = _same("yfcc15m", db, 6, subset_file=str(subset), batch_rows=4)
    assert pieces == ["rowid:1-5", "rowid:6-10", "rowid:11-15", "rowid:16-20", "rowid:21-25"]
    # photoid as INTEGER PRIMARY KEY: rowids are photo ids (sparse), pieces still cover every row once
    sparse = [_yfcc_values(10**9 + 7919 * i, f"p+{i}", marker=int(i % 5 == 0)) for i in range(30)]
    db2 = yfcc_sqlite(tmp_path / "pk.sql", sparse, pk=True)
    pieces = _same("yfcc15m", db2, 8)
    assert all(p.startswith("rowid:") for p in pieces) and len(pieces) >= 2


def test_unsplittable_and_bad_specs(tmp_path: Path) -> None:
    doc = tmp_path / "earthporn_2020.json"
    doc.write_text(json.dumps({"annotations": [{"image_id": "a", "url": "u", "caption": "c"}]}))
    adapter = get_adapter("redcaps")
    assert adapter.pieces(str(doc), adapter.options_model(), 1) == [""]
    with pytest.raises(ValueError, match=r"earthporn_2020\.json: piece 'members:0-0' does not apply"):
        read_all("redcaps", doc, "members:0-0")
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"url": ["u"], "text": ["t"]}), path)
    with pytest.raises(ValueError, match="past the file's 1 row groups"):
        read_all("coyo700m", path, "rg:1-1")
    with pytest.raises(ValueError, match="bad piece spec"):
        read_all("coyo700m", path, "rows:0-1")
    assert [r["caption"] for r in read_all("coyo700m", path, "rg:0-0")[0]] == ["t"]

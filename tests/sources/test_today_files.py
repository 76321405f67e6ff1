"""Today's non-parquet distributions read in place: the YFCC100M SQLite file with OpenAI's subset list
(plain and ``.bz2``), the zipped Visual Genome and RedCaps files, SBU's ``.tar.gz``, and CC TSVs with a
header or in the other column order."""

from __future__ import annotations

import bz2
import io
import json
import sqlite3
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rs5m.sources._yfcc_sqlite import YFCC_FIELDS
from rs5m.sources.base import SourceFormatError

from .helpers import brief, detect, read_all, read_pieces


def _yfcc_values(photoid: object, title: str = "", marker: object = 0, **kw: object) -> dict[str, object]:
    return {
        "photoid": photoid, "uid": "12345678@N00", "unickname": "some+user",
        "datetaken": "2008-06-01 10:44:00.0", "dateuploaded": "1212345678", "capturedevice": "Canon+EOS",
        "title": title, "description": kw.get("description", ""), "usertags": kw.get("usertags", ""),
        "machinetags": "", "longitude": kw.get("longitude"), "latitude": kw.get("latitude"), "accuracy": 16,
        "pageurl": f"http://www.flickr.com/photos/u/{photoid}/",
        "downloadurl": kw.get("downloadurl", f"http://farm4.staticflickr.com/3/{photoid}_abc.jpg"),
        "licensename": "Attribution License", "licenseurl": "http://creativecommons.org/licenses/by/2.0/",
        "serverid": 3, "farmid": 4, "secret": "abc", "secretoriginal": "def", "ext": "jpg", "marker": marker,
    }  # fmt: skip


def yfcc_sqlite(path: Path, rows: list[dict[str, object]], pk: bool = False) -> Path:
    """``yfcc100m_dataset.sql``: table ``yfcc100m_dataset`` with the 23 fields as columns (all TEXT, as a
    ``.import`` makes them, or with ``photoid INTEGER PRIMARY KEY``)."""
    con = sqlite3.connect(path)
    cols = ", ".join(f"{c} {'INTEGER PRIMARY KEY' if pk and c == 'photoid' else 'TEXT'}" for c in YFCC_FIELDS)
    con.execute(f"CREATE TABLE yfcc100m_dataset ({cols})")
    marks = ", ".join("?" for _ in YFCC_FIELDS)
    con.executemany(
        f"INSERT INTO yfcc100m_dataset VALUES ({marks})", [tuple(r[c] for c in YFCC_FIELDS) for r in rows]
    )
    con.commit()
    con.close()
    return path


def test_yfcc_sqlite_with_bz2_subset(tmp_path: Path) -> None:
    rows = [
        _yfcc_values(101, "Aerial+view+of+Paris.", description="Taken+from+a+%22plane%22", latitude=48.858,
                     longitude="2.2945", usertags="paris,eiffel+tower"),
        _yfcc_values(102, "not+in+subset"),
        _yfcc_values(103, "a+video", marker="1"),
        _yfcc_values(104, b"bad \xff bytes"),  # stored as a BLOB: not UTF-8
        _yfcc_values("abc", "non-numeric id"),
        _yfcc_values(106, None, description="only+a+description"),
    ]  # fmt: skip
    path = yfcc_sqlite(tmp_path / "yfcc100m_dataset.sql", rows)
    subset = tmp_path / "yfcc100m_subset_data.tsv.bz2"
    subset.write_bytes(bz2.compress(b"0\t101\t9f2c\n2\t103\tab01\n3\t104\tcd02\n5\t106\tef03\n"))
    assert get_layout(path) == ("yfcc-sqlite", 6)
    got, rejects = read_all("yfcc15m", path, subset_file=str(subset), batch_rows=2, subset_cache_dir="cache")
    assert len(list((tmp_path / "cache").glob("yfcc-subset-*.npy"))) == 1  # relative: beside the list
    name = path.name
    assert brief(rejects) == [
        (f"{name}:2", "not_in_subset", "102"),
        (f"{name}:3", "not_an_image", "103"),
        (f"{name}:4", "bad_encoding", "104"),
        (f"{name}:5", "malformed_row", None),
    ]
    assert [(r["key"], r["url"], r["caption"]) for r in got] == [
        ("101", "http://farm4.staticflickr.com/3/101_abc.jpg", 'Aerial view of Paris. Taken from a "plane"'),
        ("106", "http://farm4.staticflickr.com/3/106_abc.jpg", "only a description"),
    ]
    assert got[0]["extras"] == {
        "latitude": 48.858,
        "longitude": 2.2945,
        "datetaken": "2008-06-01 10:44:00.0",
        "usertags": ["paris", "eiffel tower"],
        "machinetags": [],
        "pageurl": "http://www.flickr.com/photos/u/101/",
    }
    # the same rows as the Webscope TSV of those lines
    tsv = tmp_path / "yfcc100m_dataset-0"
    tsv.write_text(
        "\n".join(
            "\t".join("" if r[c] is None else str(r[c]) for c in YFCC_FIELDS)
            for r in rows
            if not isinstance(r["title"], bytes)
        )
        + "\n"
    )
    tsv_rows, _ = read_all("yfcc15m", tsv, subset_file=str(subset))
    assert [(r["key"], r["caption"], r["extras"]) for r in tsv_rows] == [
        (r["key"], r["caption"], r["extras"]) for r in got
    ]


def get_layout(path: Path) -> tuple[str, int | None]:
    return detect("yfcc15m", path)


def test_yfcc_subset_cache_is_shared_and_compact(tmp_path: Path) -> None:
    subset = tmp_path / "yfcc100m_subset_data.tsv"
    subset.write_text("".join(f"{i}\t{pid}\th{i}\n" for i, pid in enumerate([30, 10, 20, 10])))
    from rs5m.sources._yfcc_subset import load_subset

    ids = load_subset(str(subset), str(tmp_path / "cache"))
    assert ids.dtype == np.int64 and ids.tolist() == [10, 20, 30]
    (cached,) = (tmp_path / "cache").glob("yfcc-subset-*.npy")
    assert np.load(cached).tolist() == [10, 20, 30]
    assert isinstance(ids, np.memmap)  # mapped from the cache file, not a private copy
    zipped = _zip(tmp_path / "subset.zip", {"yfcc100m_subset_data.tsv": subset.read_bytes()})
    assert load_subset(str(zipped)).tolist() == [10, 20, 30]
    with pytest.raises(SourceFormatError, match=r"empty\.tsv: not an OpenAI YFCC subset id list"):
        empty = tmp_path / "empty.tsv"
        empty.write_text("")
        load_subset(str(empty))


def test_yfcc_sqlite_errors(tmp_path: Path) -> None:
    other = tmp_path / "other.sql"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE photos (id TEXT)")
    con.close()
    with pytest.raises(SourceFormatError, match=r"other\.sql.*tried: yfcc-sqlite.*tables are \['photos'\]"):
        read_all("yfcc15m", other)
    parquet = tmp_path / "part-0.parquet"
    pq.write_table(pa.table({"a": [1]}), parquet)
    with pytest.raises(SourceFormatError, match=r"tried: yfcc-sqlite.*it is a parquet file"):
        read_all("yfcc15m", parquet)
    garbage = tmp_path / "yfcc100m_dataset-1"
    garbage.write_bytes(b"one\ttwo\n")
    with pytest.raises(SourceFormatError, match=r"yfcc-tsv-23.*have \[2\] tab-separated fields"):
        detect("yfcc15m", garbage)
    rows, rejects = read_all("yfcc15m", garbage)  # reading stays row-level: one malformed line
    assert rows == [] and brief(rejects) == [("yfcc100m_dataset-1:1", "malformed_row", None)]


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_visual_genome_zips_read_in_place(tmp_path: Path) -> None:
    images = [
        {"image_id": 1, "url": "https://cs.stanford.edu/people/rak248/VG_100K_2/1.jpg", "width": 800,
         "height": 600, "coco_id": None, "flickr_id": None},
        None,
        {"image_id": 2, "url": "https://cs.stanford.edu/people/rak248/VG_100K/2.jpg", "width": 500,
         "height": 400},
    ]  # fmt: skip
    region = {
        "region_id": 10,
        "image_id": 1,
        "phrase": "a parking lot",
        "x": 1,
        "y": 2,
        "width": 3,
        "height": 4,
    }
    regions = [{"regions": [region], "id": 1}]
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "image_data.json").write_text(json.dumps(images))
    (plain / "region_descriptions.json").write_text(json.dumps(regions))
    zipped_images = _zip(tmp_path / "image_data.json.zip", {"image_data.json": json.dumps(images).encode()})
    zipped_regions = _zip(
        tmp_path / "region_descriptions.json.zip", {"region_descriptions.json": json.dumps(regions).encode()}
    )
    assert detect("vg", zipped_images) == ("vg-json-zip", None)
    want = read_all("vg", plain / "image_data.json", regions_file=str(plain / "region_descriptions.json"))
    got = read_all("vg", zipped_images, regions_file=str(zipped_regions))
    assert got == want
    assert [r["caption"] for r in got[0]] == ["a parking lot", None]
    assert brief(got[1]) == [("image_data.json:1", "malformed_row", None)]
    two = _zip(tmp_path / "two.zip", {"a.json": b"[]", "b.json": b"[]"})
    with pytest.raises(SourceFormatError, match="more than one JSON document"):
        read_all("vg", two)


def _annotations(sub: str, n: int) -> bytes:
    entries = [
        {
            "image_id": f"{sub}{i}",
            "subreddit": sub,
            "url": f"https://i.redd.it/{sub}{i}.jpg",
            "caption": f"c {i}",
        }
        for i in range(n)
    ] + ["not an object"]
    return json.dumps({"info": {"subreddit": sub}, "annotations": entries}).encode()


def test_redcaps_zip_read_in_place_and_split_by_member(tmp_path: Path) -> None:
    members = {
        "LICENSE.txt": b"CC-BY 4.0",
        "TERMSOFUSE.txt": b"Reddit API terms",
        "annotations/earthporn_2020.json": _annotations("earthporn", 3),
        "annotations/abandoned_2017.json": _annotations("abandoned", 2),
        "annotations/cityporn_2021.json": _annotations("cityporn", 4),
    }
    path = _zip(tmp_path / "redcaps_v1.0_annotations.zip", members)
    assert detect("redcaps", path) == ("redcaps-zip", None)
    rows, rejects = read_all("redcaps", path, batch_rows=2)
    assert [r["key"] for r in rows] == [
        "abandoned0", "abandoned1", "cityporn0", "cityporn1", "cityporn2", "cityporn3",
        "earthporn0", "earthporn1", "earthporn2",
    ]  # fmt: skip
    assert brief(rejects) == [
        ("abandoned_2017.json:2", "malformed_row", None),
        ("cityporn_2021.json:4", "malformed_row", None),
        ("earthporn_2020.json:3", "malformed_row", None),
    ]
    # the same rows and locators as the unpacked files
    unpacked = tmp_path / "annotations"
    unpacked.mkdir()
    want_rows, want_rejects = [], []
    for name in sorted(n for n in members if n.endswith(".json")):
        (tmp_path / name).write_bytes(members[name])
        r, j = read_all("redcaps", tmp_path / name)
        want_rows += r
        want_rejects += j
    assert (rows, rejects) == (want_rows, want_rejects)
    pieces, p_rows, p_rejects = read_pieces("redcaps", path, rows_per_piece=1)
    assert pieces == ["members:0-0", "members:1-1", "members:2-2"]  # each member is over 400 bytes
    assert (p_rows, p_rejects) == (rows, rejects)
    empty = _zip(tmp_path / "empty.zip", {"LICENSE.txt": b"x"})
    with pytest.raises(SourceFormatError, match="no .json member"):
        detect("redcaps", empty)


def test_sbu_tar_gz_read_in_place(tmp_path: Path) -> None:
    doc = {
        "image_urls": ["http://static.flickr.com/2723/4385058960_b0f291553e.jpg", 7],
        "captions": ["A wooden chair in the living room", "numeric url"],
        "user_ids": ["47889917@N08", "1@N00"],
    }
    data = json.dumps(doc).encode()
    path = tmp_path / "sbu-captions-all.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("sbu-captions-all.json")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    plain = tmp_path / "sbu-captions-all.json"
    plain.write_bytes(data)
    assert detect("sbu", path) == ("sbu-json-tar", None)
    assert read_all("sbu", path) == read_all("sbu", plain)
    rows, rejects = read_all("sbu", path)
    assert [r["caption"] for r in rows] == ["A wooden chair in the living room"]
    assert brief(rejects) == [("sbu-captions-all.json:1", "malformed_row", None)]
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(path.read_bytes()[:40])
    with pytest.raises(SourceFormatError, match=r"cut\.tar\.gz"):
        read_all("sbu", cut)


def test_cc_tsv_with_header_or_other_order(tmp_path: Path) -> None:
    header = tmp_path / "cc12m.tsv"  # img2dataset's recipe adds this header line
    header.write_bytes(b"url\tcaption\nhttps://e/1.jpg\tan aerial photo\nbroken line\n")
    assert detect("cc12m", header) == ("tsv-header", None)
    rows, rejects = read_all("cc12m", header)
    assert [(r["url"], r["caption"]) for r in rows] == [("https://e/1.jpg", "an aerial photo")]
    assert brief(rejects) == [("cc12m.tsv:3", "malformed_row", None)]
    swapped = tmp_path / "GCC-training.tsv"  # CC3M given url-first
    swapped.write_bytes(b"https://f/1.jpg\taerial view\nhttps://f/2.jpg\tbeach\n")
    rows, _ = read_all("cc3m", swapped)
    assert [(r["url"], r["caption"]) for r in rows] == [
        ("https://f/1.jpg", "aerial view"),
        ("https://f/2.jpg", "beach"),
    ]
    bz = tmp_path / "GCC-training.tsv.bz2"
    bz.write_bytes(bz2.compress(b"aerial view\thttps://f/1.jpg\n"))
    assert detect("cc3m", bz) == ("tsv", None)
    assert [r["url"] for r in read_all("cc3m", bz)[0]] == ["https://f/1.jpg"]
    labels = b"aerial view\thttps://f/1.jpg\tcity\t/m/01n32\t0.98\n"
    zipped = _zip(tmp_path / "labels.zip", {"Image_Labels_Subset_Train_GCC-Labels-training.tsv": labels})
    rows, _ = read_all("cc3m", bz, labels_file=str(zipped))
    assert rows[0]["extras"] == {"tags": [{"tag": "city", "prob": 0.98}]}
    nonsense = tmp_path / "notes.txt"
    nonsense.write_bytes(b"no tabs here\nnor here\n")
    with pytest.raises(SourceFormatError, match=r"notes\.txt.*tried: tsv \(headerless url<TAB>caption\)"):
        detect("cc12m", nonsense)

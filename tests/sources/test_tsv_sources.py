"""CC12M, CC3M (+ Image Labels), WIT and YFCC15M line-format adapters, on files in their official layout."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import pytest

from rs5m.sources.base import SourceFormatError
from rs5m.sources.wit import WIT_COLUMNS

from .helpers import brief, read_all


def test_cc12m(tmp_path: Path) -> None:
    path = tmp_path / "cc12m.tsv"
    path.write_bytes(
        b"https://e/1.jpg\tAn aerial photo of <PERSON>'s farm\n"
        b'https://e/2.jpg\tquote " inside\r\n'
        b"https://e/3.jpg\tone\ttoo many\n"
        b"\n"
        b"https://e/4.jpg\tbad \xe9 byte\n"
        b"https://e/5.jpg\tnul \x00 here\n"
        b"https://e/6.jpg\t\n"
        b"no tab at all\n"
        b"https://e/7.jpg\tlast line without newline"
    )
    rows, rejects = read_all("cc12m", path, batch_rows=3)
    assert [(r["key"], r["url"], r["caption"], r["extras"]) for r in rows] == [
        (None, "https://e/1.jpg", "An aerial photo of <PERSON>'s farm", None),
        (None, "https://e/2.jpg", 'quote " inside', None),
        (None, "https://e/6.jpg", "", None),  # empty caption passes through to the driver
        (None, "https://e/7.jpg", "last line without newline", None),
    ]
    assert brief(rejects) == [
        ("cc12m.tsv:3", "malformed_row", None),
        ("cc12m.tsv:5", "bad_encoding", None),
        ("cc12m.tsv:6", "malformed_row", None),
        ("cc12m.tsv:8", "malformed_row", None),
    ]
    assert rejects[0].detail == "expected 2 tab-separated fields, got 3"


def test_cc3m_with_image_labels(tmp_path: Path) -> None:
    main = tmp_path / "Train_GCC-training.tsv"
    main.write_bytes(
        b"aerial view of the city\thttps://f/1.jpg\n"
        b"a beach from above\thttps://f/2.jpg\n"
        b"https://f/3.jpg\n"
        b"actor attends the premiere\thttps://f/4.jpg\n"
    )
    labels = tmp_path / "Image_Labels_Subset_Train_GCC-Labels-training.tsv"
    labels.write_bytes(
        b"aerial view of the city\thttps://f/1.jpg\tcity,aerial photography,urban area\t"
        b"/m/01n32,/m/0h8n6f9,/m/039jbq\t0.9876,0.912,0.85\n"
        b"broken labels line\n"
        b"actor attends the premiere\thttps://f/4.jpg\tevent\t/m/081pkj\tnot-a-number\n"
    )
    rows, rejects = read_all("cc3m", main, labels_file=str(labels))
    assert brief(rejects) == [("Train_GCC-training.tsv:3", "malformed_row", None)]
    assert [(r["url"], r["caption"], r["extras"]) for r in rows] == [
        (
            "https://f/1.jpg",
            "aerial view of the city",
            {
                "tags": [
                    {"tag": "city", "prob": 0.9876},
                    {"tag": "aerial photography", "prob": 0.912},
                    {"tag": "urban area", "prob": 0.85},
                ]
            },
        ),
        ("https://f/2.jpg", "a beach from above", None),
        ("https://f/4.jpg", "actor attends the premiere", {"tags": [{"tag": "event", "prob": None}]}),
    ]
    rows, _ = read_all("cc3m", main)
    assert all(r["extras"] is None for r in rows)
    with pytest.raises(FileNotFoundError):
        read_all("cc3m", main, labels_file=str(tmp_path / "missing.tsv"))


def _wit_line(**values: str) -> bytes:
    return "\t".join(values.get(c, "") for c in WIT_COLUMNS).encode("utf-8") + b"\n"


def test_wit(tmp_path: Path) -> None:
    path = tmp_path / "wit_v1.train.all-00000-of-00010.tsv.gz"
    common = {"page_url": "https://en.wikipedia.org/wiki/Delta", "mime_type": "image/jpeg"}
    body = (
        "\t".join(WIT_COLUMNS).encode() + b"\n"
        + _wit_line(
            language="en", image_url="https://upload.wikimedia.org/a.jpg", page_title="Delta",
            caption_reference_description='The "Nile" delta from orbit',
            caption_alt_text_description="alt", original_height="600", original_width="800",
            is_main_image="true", **common,
        )
        + _wit_line(language="fr", image_url="https://upload.wikimedia.org/b.jpg", **common)
        + _wit_line(
            language="en", image_url="https://upload.wikimedia.org/c.png", caption_alt_text_description=" ",
            caption_attribution_description="English: Landsat mosaic", original_width="x",
            is_main_image="false", **common,
        )
        + b"en\tonly\tthree\n"
        + _wit_line(language="en", image_url="https://upload.wikimedia.org/d.jpg", page_title="caf\xe9")
        .replace("café".encode(), b"caf\xe9")
        + _wit_line(language="en", image_url="https://upload.wikimedia.org/e.jpg", is_main_image="true")
    )  # fmt: skip
    path.write_bytes(gzip.compress(body))
    rows, rejects = read_all("wit", path)
    assert brief(rejects) == [
        (f"{path.name}:3", "non_english", "https://upload.wikimedia.org/b.jpg"),
        (f"{path.name}:5", "malformed_row", None),
        (f"{path.name}:6", "bad_encoding", None),
    ]
    assert rejects[0].detail == "language='fr'"
    assert [(r["key"], r["url"], r["caption"], r["width"], r["height"]) for r in rows] == [
        (None, "https://upload.wikimedia.org/a.jpg", 'The "Nile" delta from orbit', 800, 600),
        (None, "https://upload.wikimedia.org/c.png", "English: Landsat mosaic", None, None),
        (None, "https://upload.wikimedia.org/e.jpg", "", None, None),
    ]
    assert rows[0]["extras"] == {
        "language": "en",
        "page_url": "https://en.wikipedia.org/wiki/Delta",
        "page_title": "Delta",
        "mime_type": "image/jpeg",
        "is_main_image": True,
        "caption_field": "caption_reference_description",
    }
    assert rows[1]["extras"]["caption_field"] == "caption_attribution_description"
    assert rows[1]["extras"]["is_main_image"] is False
    assert rows[2]["extras"]["caption_field"] is None

    rows, rejects = read_all("wit", path, language="fr", caption_fields=["caption_alt_text_description"])
    assert [r["url"] for r in rows] == ["https://upload.wikimedia.org/b.jpg"]
    assert [r.reason for r in rejects].count("non_english") == 4


def test_wit_without_header_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "wit_v1.train.all-00001-of-00010.tsv.gz"
    path.write_bytes(gzip.compress(_wit_line(language="en", image_url="https://u/1.jpg")))
    with pytest.raises(SourceFormatError, match="header lacks"):
        read_all("wit", path)


def _yfcc(photoid: str, title: str = "", description: str = "", marker: str = "0", **kw: str) -> str:
    values = {
        "photoid": photoid, "uid": "12345678@N00", "unickname": "some+user",
        "datetaken": "2008-06-01 10:44:00.0", "dateuploaded": "1212345678", "capturedevice": "Canon+EOS",
        "title": title, "description": description, "usertags": kw.get("usertags", ""),
        "machinetags": "", "longitude": kw.get("longitude", ""), "latitude": kw.get("latitude", ""),
        "accuracy": "16", "pageurl": f"http://www.flickr.com/photos/u/{photoid}/",
        "downloadurl": f"http://farm4.staticflickr.com/3/{photoid}_abc.jpg",
        "licensename": "Attribution License",
        "licenseurl": "http://creativecommons.org/licenses/by/2.0/", "serverid": "3", "farmid": "4",
        "secret": "abc", "secretoriginal": "def", "ext": "jpg", "marker": marker,
    }  # fmt: skip
    return "\t".join(values.values())


def test_yfcc_subset_filter_decoding_and_bz2(tmp_path: Path) -> None:
    lines = [
        _yfcc("101", "Aerial+view+of+Paris.", "Taken+from+a+%22plane%22", usertags="paris,eiffel+tower",
              latitude="48.858", longitude="2.2945"),
        _yfcc("102", "not+in+subset"),
        _yfcc("103", "", "only+a+description"),
        _yfcc("104", "a+video", marker="1"),
        "105\ttoo\tfew\tfields",
        _yfcc("106", "bad+%FF+escape"),
        _yfcc("abc", "non-numeric id"),
        "7\t107\thash\t" + _yfcc("107", "multimedia+commons+layout").split("\t", 1)[1],
    ]  # fmt: skip
    path = tmp_path / "yfcc100m_dataset-0.bz2"
    path.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    subset = tmp_path / "yfcc100m_subset_data.tsv"
    subset.write_text("0\t101\t9f2c\n2\t103\tab01\n3\t104\tcd02\n5\t106\tef03\n6\t107\t0a0b\n")
    rows, rejects = read_all("yfcc15m", path, subset_file=str(subset), batch_rows=3)
    assert sorted(brief(rejects)) == [
        ("yfcc100m_dataset-0.bz2:2", "not_in_subset", "102"),
        ("yfcc100m_dataset-0.bz2:4", "not_an_image", "104"),
        ("yfcc100m_dataset-0.bz2:5", "malformed_row", None),
        ("yfcc100m_dataset-0.bz2:6", "bad_encoding", "106"),
        ("yfcc100m_dataset-0.bz2:7", "malformed_row", None),
    ]
    assert [(r["key"], r["url"], r["caption"]) for r in rows] == [
        ("101", "http://farm4.staticflickr.com/3/101_abc.jpg", 'Aerial view of Paris. Taken from a "plane"'),
        ("103", "http://farm4.staticflickr.com/3/103_abc.jpg", "only a description"),
        ("107", "http://farm4.staticflickr.com/3/107_abc.jpg", "multimedia commons layout"),
    ]
    assert rows[0]["extras"] == {
        "latitude": 48.858,
        "longitude": 2.2945,
        "datetaken": "2008-06-01 10:44:00.0",
        "usertags": ["paris", "eiffel tower"],
        "machinetags": [],
        "pageurl": "http://www.flickr.com/photos/u/101/",
    }
    assert rows[1]["extras"]["latitude"] is None

    # a subset file with a header line, and options changing caption fields and video handling
    subset.write_text("line_number\tphotoid\tphotohash\n3\t104\tcd02\n")
    rows, rejects = read_all(
        "yfcc15m", path, subset_file=str(subset), caption_fields=["title"], images_only=False
    )
    assert [(r["key"], r["caption"]) for r in rows] == [("104", "a video")]
    assert sum(r.reason == "not_in_subset" for r in rejects) == 5

    rows, _ = read_all("yfcc15m", path)  # no subset: every well-formed image row
    assert [r["key"] for r in rows] == ["101", "102", "103", "107"]


def test_corrupt_compressed_stream_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "cc12m.tsv.gz"
    path.write_bytes(b"plain text, not gzip\n")
    with pytest.raises(SourceFormatError, match=r"cc12m\.tsv\.gz"):
        read_all("cc12m", path)
    truncated = tmp_path / "wit_v1.train.all-00002-of-00010.tsv.gz"
    full = gzip.compress("\t".join(WIT_COLUMNS).encode() + b"\n" + _wit_line(language="en") * 50)
    truncated.write_bytes(full[: len(full) // 2])
    with pytest.raises(SourceFormatError, match="truncated"):
        read_all("wit", truncated)

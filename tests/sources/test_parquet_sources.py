"""LAION2B-en / LAION400M (both layouts), LAION-COCO and COYO-700M parquet adapters."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rs5m.sources.base import SourceFormatError

from .helpers import brief, read_all


def _text(values: list[bytes | None]) -> pa.Array:
    """A string column that may hold invalid UTF-8, as a careless parquet writer would store it."""
    return pa.array(values, pa.binary()).view(pa.string())


def _write(path: Path, cols: dict[str, pa.Array]) -> Path:
    pq.write_table(pa.table(cols), path)
    return path


def test_laion_plain_layout(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "part-00000-5114fd87-297e-42b0-9d11-50f1df323dfa-c000.snappy.parquet",
        {
            "SAMPLE_ID": pa.array([11, 12, 13, 14, 15], pa.int64()),
            "URL": _text(
                [b"http://a/1.jpg", b"http://a/2.jpg", b"http://a/\x003.jpg", b"http://a/4.jpg", None]
            ),
            "TEXT": _text([b"aerial view", b'say "hi"\\', b"x", b"bad \xff text", None]),
            "HEIGHT": pa.array([480.0, None, 1.0, 2.0, -5.0]),
            "WIDTH": pa.array([640.0, math.nan, 1.0, 2.0, 3e12]),
            "LICENSE": pa.array(["?", "line\nbreak", None, "?", "?"]),
            "NSFW": pa.array(["UNLIKELY", "NSFW", "UNSURE", "UNLIKELY", None]),
            "similarity": pa.array([0.31, math.nan, 0.2, 0.2, None]),
        },
    )
    rows, rejects = read_all("laion2b", path, batch_rows=2)
    assert brief(rejects) == [
        (f"{path.name}:2", "malformed_row", "13"),
        (f"{path.name}:3", "bad_encoding", "14"),
    ]
    assert [r.detail for r in rejects] == ["NUL character in url", "caption is not valid UTF-8"]
    assert rows == [
        {
            "key": "11",
            "url": "http://a/1.jpg",
            "caption": "aerial view",
            "width": 640,
            "height": 480,
            "extras": {"similarity": 0.31, "nsfw": "UNLIKELY", "license": "?"},
        },
        {
            "key": "12",
            "url": "http://a/2.jpg",
            "caption": 'say "hi"\\',
            "width": None,
            "height": None,
            "extras": {"similarity": None, "nsfw": "NSFW", "license": "line\nbreak"},
        },
        # empty url/caption pass through: the ingest driver counts them
        {
            "key": "15",
            "url": None,
            "caption": None,
            "width": None,
            "height": None,
            "extras": {"similarity": None, "nsfw": None, "license": "?"},
        },
    ]


def test_laion_joined_layout_float_ids_and_case(tmp_path: Path) -> None:
    joined = _write(
        tmp_path / "part-00001-joined.parquet",
        {
            "URL": pa.array(["https://b/1.png", "https://b/2.png"]),
            "TEXT": pa.array(["satellite image", "map"]),
            "WIDTH": pa.array([256, 300], pa.int64()),
            "HEIGHT": pa.array([256, None], pa.int64()),
            "similarity": pa.array([0.3, 0.4], pa.float64()),
            "hash": pa.array([-123456789012, 5], pa.int64()),
            "punsafe": pa.array([0.01, None], pa.float32()),
            "pwatermark": pa.array([0.5, 0.25], pa.float32()),
        },
    )
    rows, rejects = read_all("laion400m", joined)
    assert rejects == []
    assert [(r["key"], r["url"], r["caption"], r["width"], r["height"]) for r in rows] == [
        (None, "https://b/1.png", "satellite image", 256, 256),
        (None, "https://b/2.png", "map", 300, None),
    ]
    assert rows[0]["extras"] == {"similarity": 0.3, "punsafe": 0.01, "pwatermark": 0.5, "hash": -123456789012}
    assert rows[1]["extras"] == {"similarity": 0.4, "punsafe": None, "pwatermark": 0.25, "hash": 5}

    lower = _write(
        tmp_path / "lower.parquet",
        {
            "sample_id": pa.array([7.0, math.nan]),
            "url": pa.array(["u1", "u2"]),
            "text": pa.array(["t1", "t2"]),
        },
    )
    rows, _ = read_all("laion2b", lower)
    assert [(r["key"], r["extras"]) for r in rows] == [("7", None), (None, None)]


def test_parquet_format_errors(tmp_path: Path) -> None:
    no_text = _write(tmp_path / "no_text.parquet", {"URL": pa.array(["u"]), "similarity": pa.array([0.1])})
    with pytest.raises(SourceFormatError, match=r"no_text\.parquet.*TEXT"):
        list(read_all("laion2b", no_text))
    not_parquet = tmp_path / "part-00002.parquet"
    not_parquet.write_text("URL\tTEXT\nhttp://x\ty\n")
    with pytest.raises(SourceFormatError, match="part-00002.parquet"):
        read_all("coyo700m", not_parquet)
    int_url = _write(tmp_path / "int_url.parquet", {"url": pa.array([1]), "text": pa.array(["t"])})
    with pytest.raises(SourceFormatError, match="expected a string column"):
        read_all("coyo700m", int_url)
    flat = _write(tmp_path / "flat.parquet", {"URL": pa.array(["u"]), "all_captions": pa.array(["a"])})
    with pytest.raises(SourceFormatError, match="all_captions"):
        read_all("laioncoco", flat)


def _coco(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "part-00000-2256f782-126f-4dc6-b9c6-e6757637749d-c000.snappy.parquet",
        {
            "URL": pa.array(["http://c/1", "http://c/2", "http://c/3", "http://c/4"]),
            "TEXT": pa.array(["alt one", "alt two", "alt three", "alt four"]),
            "top_caption": pa.array(["an aerial view of a city", "top two", "  ", None]),
            "all_captions": pa.array(
                [[" an aerial view of a city.", "", "a satellite map ", None], [], None, ["x\u00e9"]],
                pa.list_(pa.string()),
            ),
            "all_similarities": pa.array([[0.3, 0.2, 0.1, 0.0], [], None, [0.1]], pa.list_(pa.float64())),
            "WIDTH": pa.array([512, 512, 640, 1], pa.int32()),
            "HEIGHT": pa.array([384, 512, 480, 1], pa.int32()),
            "similarity": pa.array([0.33, 0.2, 0.1, 0.0]),
            "hash": pa.array([1, 2, 3, 4], pa.int64()),
            "pwatermark": pa.array([0.1, 0.2, 0.3, 0.4], pa.float32()),
            "punsafe": pa.array([0.0, 0.5, 0.25, 0.125], pa.float32()),
        },
    )


def test_laioncoco_caption_modes(tmp_path: Path) -> None:
    path = _coco(tmp_path)
    rows, rejects = read_all("laioncoco", path)
    assert rejects == []
    assert [(r["caption"], r["extras"]["caption_from"]) for r in rows] == [
        ("an aerial view of a city. a satellite map", "all_captions"),
        ("top two", "top_caption"),
        ("alt three", "TEXT"),
        ("x\u00e9", "all_captions"),
    ]
    assert rows[0]["key"] is None and (rows[0]["width"], rows[0]["height"]) == (512, 384)
    assert rows[0]["extras"] == {
        "top_caption": "an aerial view of a city",
        "similarity": 0.33,
        "punsafe": 0.0,
        "pwatermark": 0.1,
        "hash": 1,
        "caption_from": "all_captions",
    }
    rows, _ = read_all("laioncoco", path, caption_mode="all_captions", caption_join=" | ")
    assert rows[0]["caption"] == "an aerial view of a city. | a satellite map"
    rows, _ = read_all("laioncoco", path, caption_mode="top_caption")
    assert [r["caption"] for r in rows] == ["an aerial view of a city", "top two", "alt three", "alt four"]
    rows, _ = read_all("laioncoco", path, caption_mode="text")
    assert [r["caption"] for r in rows] == ["alt one", "alt two", "alt three", "alt four"]


def test_laioncoco_bad_utf8_in_caption_list(tmp_path: Path) -> None:
    values = pa.array([b"fine", b"bro\xc3ken"], pa.binary()).view(pa.string())
    lists = pa.ListArray.from_arrays(pa.array([0, 1, 2], pa.int32()), values)
    path = _write(tmp_path / "coco-bad.parquet", {"URL": pa.array(["u1", "u2"]), "all_captions": lists})
    rows, rejects = read_all("laioncoco", path)
    assert [r["caption"] for r in rows] == ["fine"]
    assert brief(rejects) == [("coco-bad.parquet:1", "bad_encoding", None)]


def test_coyo(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "part-00000-17da4908-939c-46e5-91d0-15f256041956-c000.snappy.parquet",
        {
            "id": pa.array([4294967296001, 2], pa.int64()),
            "url": pa.array(["https://d/1.jpg", "https://d/2.jpg"]),
            "text": pa.array(["remote sensing", "ctrl\x01char"]),
            "width": pa.array([1024, 0], pa.int32()),
            "height": pa.array([768, 10], pa.int32()),
            "image_phash": pa.array(["9b9d26c4", None]),
            "text_length": pa.array([14, 9], pa.int32()),
            "word_count": pa.array([2, 1], pa.int32()),
            "num_tokens_bert": pa.array([2, 1], pa.int32()),
            "num_tokens_gpt": pa.array([2, 1], pa.int32()),
            "num_faces": pa.array([0, 0], pa.int32()),
            "clip_similarity_vitb32": pa.array([0.3, 0.2], pa.float32()),
            "clip_similarity_vitl14": pa.array([0.25, 0.2], pa.float32()),
            "nsfw_score_opennsfw2": pa.array([0.001, 0.2], pa.float32()),
            "nsfw_score_gantman": pa.array([0.002, 0.2], pa.float32()),
            "watermark_score": pa.array([0.05, 0.2], pa.float32()),
            "aesthetic_score_laion_v2": pa.array([4.5, 5.0], pa.float32()),
        },
    )
    rows, rejects = read_all("coyo700m", path)
    assert rejects == []
    assert [(r["key"], r["caption"], r["width"], r["height"]) for r in rows] == [
        ("4294967296001", "remote sensing", 1024, 768),
        ("2", "ctrl\x01char", 0, 10),
    ]
    assert rows[0]["extras"] == {
        "clip_similarity_vitb32": 0.3,
        "clip_similarity_vitl14": 0.25,
        "watermark_score": 0.05,
        "aesthetic_score_laion_v2": 4.5,
        "nsfw_score_opennsfw2": 0.001,
        "nsfw_score_gantman": 0.002,
        "image_phash": "9b9d26c4",
    }

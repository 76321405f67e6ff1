"""RedCaps, SBU and Visual Genome adapters (one JSON document per file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rs5m.sources.base import SourceFormatError

from .helpers import brief, read_all


def test_redcaps(tmp_path: Path) -> None:
    annotations = [
        {
            "image_id": "gtv2zh", "subreddit": "earthporn", "url": "https://i.redd.it/a.jpg",
            "caption": "aerial view of a glacier", "raw_caption": "Aerial view of a glacier [OC] [4000x3000]",
            "score": 120, "author": "someone", "created_utc": 1591000000.0,
            "permalink": "/r/EarthPorn/comments/gtv2zh/aerial_view/",
        },
        "not an object",
        {"image_id": "x2", "subreddit": "itookapicture", "url": "https://i.redd.it/b.jpg", "caption": None},
        {"image_id": ["bad"], "url": "https://i.redd.it/c.jpg", "caption": "c"},
        {"image_id": "x4", "url": 42, "caption": "numeric url"},
        {"image_id": "x5", "url": "https://i.redd.it/e.jpg", "caption": "lone \ud800 surrogate"},
        {"image_id": "x6", "url": "https://i.redd.it/f.jpg", "caption": "nul \x00 inside"},
        {"image_id": "x7", "url": "https://i.redd.it/g.jpg", "caption": "g", "score": float("nan")},
    ]  # fmt: skip
    path = tmp_path / "earthporn_2020.json"
    path.write_text(
        json.dumps({"info": {"subreddit": "earthporn", "year": 2020}, "annotations": annotations})
    )
    rows, rejects = read_all("redcaps", path, batch_rows=2)
    assert rows == [
        {
            "key": "gtv2zh",
            "url": "https://i.redd.it/a.jpg",
            "caption": "aerial view of a glacier",
            "width": None,
            "height": None,
            "extras": {
                "subreddit": "earthporn",
                "created_utc": 1591000000.0,
                "score": 120,
                "permalink": "/r/EarthPorn/comments/gtv2zh/aerial_view/",
            },
        },
        {
            "key": "x2",
            "url": "https://i.redd.it/b.jpg",
            "caption": None,
            "width": None,
            "height": None,
            "extras": {"subreddit": "itookapicture"},
        },
    ]
    assert brief(rejects) == [
        ("earthporn_2020.json:1", "malformed_row", None),
        ("earthporn_2020.json:3", "malformed_row", None),
        ("earthporn_2020.json:4", "malformed_row", "x4"),
        ("earthporn_2020.json:5", "bad_encoding", "x5"),
        ("earthporn_2020.json:6", "malformed_row", "x6"),
        ("earthporn_2020.json:7", "malformed_row", "x7"),
    ]


@pytest.mark.parametrize(
    "content,match",
    [
        (b'{"info": {}, "annotations": [', "not a valid JSON"),
        (b'{"info": {}}', "annotations"),
        (b"[1, 2]", "annotations"),
        (b'{"annotations": ["\xff"]}', "not a valid JSON"),
    ],
)
def test_redcaps_whole_file_errors(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "pics_2019.json"
    path.write_bytes(content)
    with pytest.raises(SourceFormatError, match=match):
        read_all("redcaps", path)


def test_sbu_unequal_lists(tmp_path: Path) -> None:
    path = tmp_path / "sbu-captions-all.json"
    doc = {
        "image_urls": [
            "http://static.flickr.com/2723/4385058960_b0f291553e.jpg",
            "http://static.flickr.com/3/5_x.jpg",
            7,
            "http://static.flickr.com/3/6_x.jpg",
        ],
        "captions": ["A wooden chair in the living room", "  aerial view  ", "numeric url", "fourth"],
        "user_ids": ["47889917@N08", "1@N00", "2@N00"],
    }
    path.write_text(json.dumps(doc))
    rows, rejects = read_all("sbu", path)
    assert [(r["key"], r["url"], r["caption"], r["extras"]) for r in rows] == [
        (
            None,
            "http://static.flickr.com/2723/4385058960_b0f291553e.jpg",
            "A wooden chair in the living room",
            {"user_id": "47889917@N08"},
        ),
        (None, "http://static.flickr.com/3/5_x.jpg", "  aerial view  ", {"user_id": "1@N00"}),
    ]
    assert brief(rejects) == [
        ("sbu-captions-all.json:2", "malformed_row", None),
        ("sbu-captions-all.json:3", "malformed_row", None),
    ]
    assert rejects[1].detail == "list lengths differ: image_urls=4, captions=4, user_ids=3"

    path.write_text(json.dumps({"image_urls": ["u"], "caption": ["c"]}))
    with pytest.raises(SourceFormatError, match="captions"):
        read_all("sbu", path)


def _region(region_id: int, image_id: int, phrase: str) -> dict[str, object]:
    return {
        "region_id": region_id,
        "image_id": image_id,
        "phrase": phrase,
        "x": 1,
        "y": 2,
        "width": 3,
        "height": 4,
    }


def test_visual_genome(tmp_path: Path) -> None:
    images = [
        {"image_id": 1, "url": "https://cs.stanford.edu/people/rak248/VG_100K_2/1.jpg", "width": 800,
         "height": 600, "coco_id": None, "flickr_id": None},
        {"id": 2, "url": "https://cs.stanford.edu/people/rak248/VG_100K/2.jpg", "width": 800, "height": "600",
         "coco_id": 1234, "flickr_id": 5678},
        {"image_id": "3", "url": "https://x/3.jpg"},
        None,
        {"image_id": 4, "url": "https://cs.stanford.edu/people/rak248/VG_100K/4.jpg", "width": -1,
         "height": 10},
    ]  # fmt: skip
    regions = [
        {"regions": [_region(10, 1, "a parking lot"), _region(11, 1, "trees along the road."),
                     _region(12, 1, "A parking lot "), _region(13, 1, ""), _region(14, 1, "white cars")],
         "id": 1},
        {"regions": [_region(20, 2, "a man")], "id": 2},
    ]  # fmt: skip
    (tmp_path / "image_data.json").write_text(json.dumps(images))
    (tmp_path / "region_descriptions.json").write_text(json.dumps(regions))
    rows, rejects = read_all(
        "vg",
        tmp_path / "image_data.json",
        regions_file=str(tmp_path / "region_descriptions.json"),
        max_regions=3,
    )
    assert brief(rejects) == [
        ("image_data.json:2", "malformed_row", None),
        ("image_data.json:3", "malformed_row", None),
    ]
    assert [(r["key"], r["caption"], r["width"], r["height"], r["extras"]) for r in rows] == [
        ("1", "a parking lot. trees along the road. white cars", 800, 600,
         {"coco_id": None, "flickr_id": None, "n_regions": 5}),
        ("2", "a man", 800, 600, {"coco_id": 1234, "flickr_id": 5678, "n_regions": 1}),
        ("4", None, None, 10, {"coco_id": None, "flickr_id": None, "n_regions": 0}),
    ]  # fmt: skip
    rows, _ = read_all(
        "vg", tmp_path / "image_data.json", regions_file=str(tmp_path / "region_descriptions.json")
    )
    assert rows[0]["caption"] == "a parking lot. trees along the road. white cars"
    rows, _ = read_all("vg", tmp_path / "image_data.json")
    assert [r["caption"] for r in rows] == [None, None, None]

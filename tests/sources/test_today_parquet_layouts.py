"""Today's parquet releases: Re-LAION (2B-en / 400M / COCO), the ``columns`` option, and the Hugging Face
parquet conversions of CC3M / CC12M, each on a tiny file in exactly that layout."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rs5m.sources.base import SourceFormatError

from .helpers import brief, detect, read_all

RELAION_NAME = "part-00000-d0a3ae3a-6e4c-4d34-ae5b-c1bc3ae6bc5e-c000.snappy.parquet"


def _write(path: Path, cols: dict[str, pa.Array]) -> Path:
    pq.write_table(pa.table(cols), path)
    return path


def _relaion(path: Path) -> Path:
    """A Re-LAION-2B-en part: the 15 published columns, as img2dataset writes them."""
    n = 5
    return _write(
        path,
        {
            "url": pa.array(["http://a/1.jpg", "http://a/2.jpg", "http://a/3.jpg", "http://a/4.jpg", None]),
            "caption": pa.array([b"aerial view", b"a map", b"bad \xff", b"harbour", b"no url"]).view(
                pa.string()
            ),
            "similarity": pa.array([0.31, 0.29, 0.3, 0.33, 0.28]),
            "hash": pa.array([-11, 42, 7, 8, 9], pa.int64()),
            "pwatermark": pa.array([0.1, 0.2, None, 0.4, 0.5], pa.float32()),
            "punsafe": pa.array([0.01, 0.02, 0.03, 0.04, 0.05], pa.float32()),
            "key": pa.array(["000000001", None, "000000003", "000000004", "000000005"]),
            "status": pa.array(["success"] * n),
            "error_message": pa.nulls(n),
            "width": pa.array([256, 256, 256, 256, 256], pa.int64()),
            "height": pa.array([192, 256, 256, 256, 256], pa.int64()),
            "original_width": pa.array([800, 640, 1, 1024, 2], pa.int64()),
            "original_height": pa.array([600, 640, 1, 768, 2], pa.int64()),
            "exif": pa.array(["{}"] * n),
            "md5": pa.array(["d41d8cd98f00b204e9800998ecf8427e"] * n),
        },
    )


def test_relaion_2b_layout(tmp_path: Path) -> None:
    path = _relaion(tmp_path / RELAION_NAME)
    assert detect("laion2b", path) == ("relaion", 5)
    rows, rejects = read_all("laion2b", path, batch_rows=2)
    assert brief(rejects) == [(f"{path.name}:2", "bad_encoding", "000000003")]
    assert [(r["key"], r["url"], r["caption"], r["width"], r["height"]) for r in rows] == [
        ("000000001", "http://a/1.jpg", "aerial view", 800, 600),
        ("42", "http://a/2.jpg", "a map", 640, 640),  # no key: the hash
        ("000000004", "http://a/4.jpg", "harbour", 1024, 768),
        ("000000005", None, "no url", 2, 2),  # passes through: the ingest driver counts it
    ]
    assert rows[0]["extras"] == {"similarity": 0.31, "punsafe": 0.01, "pwatermark": 0.1, "hash": -11}
    assert rows[2]["extras"]["pwatermark"] == 0.4
    # LAION-400M reads the same layout (laion/relaion400m)
    assert read_all("laion400m", path)[0] == rows


def test_relaion_and_original_layout_give_consistent_rows(tmp_path: Path) -> None:
    """The same samples as Re-LAION and as the original "-joined" part: one adapter, the same rows
    (url, caption, size, scores); only the id differs (the original layout has none)."""
    relaion = _relaion(tmp_path / RELAION_NAME)
    t = pq.read_table(relaion)
    original = _write(
        tmp_path / "part-00000-5114fd87-297e-42b0-9d11-50f1df323dfa-c000.snappy.parquet",
        {
            "URL": t["url"],
            "TEXT": t["caption"],
            "WIDTH": t["original_width"].cast(pa.float64()),
            "HEIGHT": t["original_height"].cast(pa.float64()),
            "similarity": t["similarity"],
            "hash": t["hash"],
            "punsafe": t["punsafe"],
            "pwatermark": t["pwatermark"],
        },
    )
    assert detect("laion2b", original) == ("laion-joined", 5)
    new_rows, new_rejects = read_all("laion2b", relaion)
    old_rows, old_rejects = read_all("laion2b", original)
    assert [(r.reason, r.locator.split(":")[1]) for r in new_rejects] == [
        (r.reason, r.locator.split(":")[1]) for r in old_rejects
    ]
    drop_key = [{k: v for k, v in r.items() if k != "key"} for r in new_rows]
    assert drop_key == [{k: v for k, v in r.items() if k != "key"} for r in old_rows]
    assert [r["key"] for r in old_rows] == [None] * 4


def test_columns_option_maps_a_future_release(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "part-00000.parquet",
        {
            "image_link": pa.array(["https://n/1.jpg", "https://n/2.jpg"]),
            "alt_text": pa.array(["satellite image of a port", "dog"]),
            "uid": pa.array([5, 6], pa.int64()),
            "w": pa.array([100, 200], pa.int32()),
        },
    )
    with pytest.raises(
        SourceFormatError, match=r"part-00000\.parquet.*tried: laion-original.*relaion"
    ) as exc:
        read_all("laion2b", path)
    assert "\n" not in str(exc.value)
    cols = {"url": "image_link", "caption": "ALT_TEXT", "key": "uid", "width": "w"}
    assert detect("laion2b", path, columns=cols) == ("custom+columns", 2)
    rows, rejects = read_all("laion2b", path, columns=cols)
    assert rejects == []
    assert [(r["key"], r["url"], r["caption"], r["width"], r["height"], r["extras"]) for r in rows] == [
        ("5", "https://n/1.jpg", "satellite image of a port", 100, None, None),
        ("6", "https://n/2.jpg", "dog", 200, None, None),
    ]
    with pytest.raises(SourceFormatError, match=r"'height_px' \(columns option, height\) is not in the file"):
        read_all("coyo700m", path, columns={**cols, "height": "height_px"})
    # a partial map on a known layout: Re-LAION with hash as the id
    relaion = _relaion(tmp_path / RELAION_NAME)
    assert detect("laion2b", relaion, columns={"key": "hash"})[0] == "relaion+columns"
    rows, _ = read_all("laion2b", relaion, columns={"key": "hash"})
    assert [r["key"] for r in rows] == ["-11", "42", "8", "9"]


def test_relaion_coco_layout(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "part-00000-relaion-coco.snappy.parquet",
        {
            "url": pa.array(["http://c/1", "http://c/2", "http://c/3"]),
            "caption": pa.array(["alt one", "alt two", "alt three"]),
            "top_caption": pa.array(["an aerial view of a city", None, ""]),
            "all_captions": pa.array(
                [["an aerial view of a city", "a map"], [], None], pa.list_(pa.string())
            ),
            "key": pa.array(["k1", None, "k3"]),
            "hash": pa.array([1, 2, 3], pa.int64()),
            "width": pa.array([512, 512, 640], pa.int64()),
            "height": pa.array([384, 512, 480], pa.int64()),
            "punsafe": pa.array([0.0, 0.5, 0.25], pa.float32()),
        },
    )
    assert detect("laioncoco", path) == ("relaion-coco", 3)
    rows, rejects = read_all("laioncoco", path)
    assert rejects == []
    assert [(r["key"], r["caption"], r["extras"]["caption_from"], r["width"]) for r in rows] == [
        ("k1", "an aerial view of a city. a map", "all_captions", 512),
        ("2", "alt two", "TEXT", 512),
        ("k3", "alt three", "TEXT", 640),
    ]
    rows, _ = read_all("laioncoco", path, caption_mode="text")
    assert [r["caption"] for r in rows] == ["alt one", "alt two", "alt three"]
    with pytest.raises(SourceFormatError, match="tried: laion-coco"):
        read_all("laioncoco", _write(tmp_path / "x.parquet", {"url": pa.array(["u"])}))


def test_cc_hugging_face_parquet(tmp_path: Path) -> None:
    unlabeled = _write(
        tmp_path / "train-00000-of-00002.parquet",
        {
            "image_url": pa.array(["https://f/1.jpg", "https://f/2.jpg", None]),
            "caption": pa.array(["aerial view of the city", "a beach", "no url"]),
        },
    )
    for source in ("cc3m", "cc12m"):
        assert detect(source, unlabeled) == ("hf-parquet", 3)
        rows, rejects = read_all(source, unlabeled)
        assert rejects == []
        assert [(r["key"], r["url"], r["caption"], r["extras"]) for r in rows] == [
            (None, "https://f/1.jpg", "aerial view of the city", None),
            (None, "https://f/2.jpg", "a beach", None),
            (None, None, "no url", None),
        ]
    labeled = _write(
        tmp_path / "labeled-train-00000-of-00003.parquet",
        {
            "image_url": pa.array(["https://f/1.jpg", "https://f/2.jpg"]),
            "caption": pa.array(["aerial view of the city", "a beach"]),
            "labels": pa.array([["city", "aerial photography"], []], pa.list_(pa.string())),
            "MIDs": pa.array([["/m/01n32", "/m/0h8n6f9"], []], pa.list_(pa.string())),
            "confidence_scores": pa.array([[0.98, 0.91], []], pa.list_(pa.float64())),
        },
    )
    assert detect("cc3m", labeled) == ("hf-parquet-labeled", 2)
    rows, _ = read_all("cc3m", labeled)
    assert [r["extras"] for r in rows] == [
        {"tags": [{"tag": "city", "prob": 0.98}, {"tag": "aerial photography", "prob": 0.91}]},
        {"tags": None},
    ]
    # the labelled parquet as labels_file of the unlabelled parquet and of Google's TSV
    rows, _ = read_all("cc3m", unlabeled, labels_file=str(labeled))
    assert [r["extras"] for r in rows] == [
        {"tags": [{"tag": "city", "prob": 0.98}, {"tag": "aerial photography", "prob": 0.91}]},
        {"tags": []},
        {"tags": None},
    ]
    folder = tmp_path / "labeled"  # labels_file may name the labelled config's folder of parts
    folder.mkdir()
    labeled.rename(folder / "train-00000-of-00003.parquet")
    assert read_all("cc3m", unlabeled, labels_file=str(folder))[0] == rows
    labeled = folder / "train-00000-of-00003.parquet"
    tsv = tmp_path / "GCC-training.tsv"
    tsv.write_bytes(b"aerial view of the city\thttps://f/1.jpg\nunlabelled\thttps://f/9.jpg\n")
    rows, _ = read_all("cc3m", tsv, labels_file=str(labeled))
    assert [r["extras"] for r in rows] == [
        {"tags": [{"tag": "city", "prob": 0.98}, {"tag": "aerial photography", "prob": 0.91}]},
        None,
    ]
    with pytest.raises(SourceFormatError, match=r"tried: hf-parquet \(image_url, caption\)"):
        read_all(
            "cc12m", _write(tmp_path / "y.parquet", {"link": pa.array(["u"]), "caption": pa.array(["c"])})
        )

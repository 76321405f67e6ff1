"""Fuzzed RS3 metadata JSON through ``rs5m.rs3.readers.read_item`` (fMoW and BigEarthNet).

Each generated item has a valid image (fMoW JPEG, BEN B04/B03/B02 TIFFs) and fuzzed metadata: random
bytes, bad UTF-8, truncated or non-object JSON, and objects whose fields hold random JSON values
around plausible ones. Property: every item ends ``ok`` or with an ``RS3Reason`` and a detail
(``read_item`` never raises), and only ``rgb_dir`` receives files.

Crashes found here were fixed; each is kept as a regression test with its minimal input (bottom of
the file). Any exception escaping ``read_item`` fails the fuzz test.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from rs5m.rs3.readers import RS3Reason, read_item
from tests.faults import fuzz_settings, record, tree

_REASONS = {r.value for r in RS3Reason}
_FMOW_KEY = "train/airport/airport_0/airport_0_0_rgb.jpg"
_BEN_KEY = "S2A_patch_1_1"

_any = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _maybe(good: Any) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(good), st.just(good), _any)


_box = st.one_of(
    st.fixed_dictionaries({"ID": _maybe(1), "box": _maybe([10, 10, 20, 20]), "category": _maybe("airport")}),
    st.fixed_dictionaries(
        {"ID": st.just(-1), "raw_location": _maybe("POLYGON ((10 20, 11 20, 11 21, 10 20))")}
    ),
    _any,
)
_fmow_meta = st.fixed_dictionaries(
    {},
    optional={
        "bounding_boxes": st.one_of(st.lists(_box, max_size=3), _any),
        "timestamp": _maybe("2016-06-09T15:00:00Z"),
        "utm": _maybe("18T"),
        "gsd": _maybe(0.5),
        "img_width": _maybe(64),
        "img_height": _maybe(64),
        "cloud_cover": _maybe(3),
        "scan_direction": _maybe("Forward"),
        "target_azimuth_dbl": _maybe(12.5),
        "off_nadir_angle_dbl": _maybe(20.1),
    },
)
_ben_meta = st.fixed_dictionaries(
    {},
    optional={
        "labels": _maybe(["Pastures", "Coniferous forest"]),
        "projection": _maybe('PROJCS["WGS 84 / UTM zone 34N"]'),
        "acquisition_date": _maybe("2017-06-13 10:10:32"),
        "coordinates": st.one_of(
            st.fixed_dictionaries(
                {
                    k: _maybe(v)
                    for k, v in {"ulx": 500000, "uly": 6000000, "lrx": 501200, "lry": 5998800}.items()
                }
            ),
            _any,
        ),
    },
)


@st.composite
def meta_bytes(draw: st.DrawFn, meta: st.SearchStrategy[Any]) -> bytes:
    """Metadata file bytes: a fuzzed object (sometimes damaged), random bytes or bad UTF-8."""
    doc = draw(st.one_of(meta, meta, meta, _any))
    raw = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    how = draw(st.sampled_from(["ok", "ok", "ok", "cut", "bytes", "latin1"]))
    if how == "cut":
        return raw[: draw(st.integers(0, len(raw)))]
    if how == "bytes":
        return draw(st.binary(max_size=50))
    if how == "latin1":
        return raw + "\u00e9".encode("latin-1")
    return raw


def _run(source: str, write: dict[str, bytes], key: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="rs5m-rs3fuzz-"))
    try:
        data, rgb = root / "data", root / "rgb"
        for rel, content in write.items():
            (data / rel).parent.mkdir(parents=True, exist_ok=True)
            (data / rel).write_bytes(content)
        rgb.mkdir()
        before = tree(root)
        try:
            item = read_item(source, data, key, rgb)
        except Exception as exc:
            record(f"rs3/{source}", handled=False, crash=True, detail=f"{type(exc).__name__}: {exc}"[:200])
            raise
        outside = [p for p in tree(root) - before if not p.startswith("rgb/")]
        ok = item.status == "ok" or (item.status in _REASONS and bool(item.detail))
        record(f"rs3/{source}", handled=ok and not outside, outside=len(outside))
        assert not outside, outside
        assert ok, item
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 30)).save(buf, "JPEG")
    return buf.getvalue()


def _tif() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((12, 12), 900, dtype=np.uint16)).save(buf, "TIFF")
    return buf.getvalue()


_JPEG, _TIF = _jpeg(), _tif()


@fuzz_settings(120)
@given(meta=meta_bytes(_fmow_meta), with_json=st.integers(0, 9))
def test_fmow_metadata(meta: bytes, with_json: int) -> None:
    """fMoW: every image ends read or with a reason, whatever its JSON holds (or if it is missing)."""
    files = {_FMOW_KEY: _JPEG}
    if with_json:
        files[_FMOW_KEY.replace(".jpg", ".json")] = meta
    _run("fmow", files, _FMOW_KEY)


@fuzz_settings(80)
@given(meta=meta_bytes(_ben_meta), bands=st.sets(st.sampled_from(["B04", "B03", "B02"])))
def test_ben_metadata(meta: bytes, bands: set[str]) -> None:
    """BigEarthNet: every patch ends read (RGB PNG in rgb_dir) or with a reason."""
    files = {f"{_BEN_KEY}/{_BEN_KEY}_labels_metadata.json": meta}
    files |= {f"{_BEN_KEY}/{_BEN_KEY}_{b}.tif": _TIF for b in ("B04", "B03", "B02") if b not in bands}
    _run("ben", files, _BEN_KEY)


# --- fuzz findings (fixed), kept as regression tests with their minimal inputs ---------------------

_GOOD_FMOW = {
    "bounding_boxes": [
        {"ID": -1, "raw_location": "POLYGON ((10 20, 11 20, 11 21, 10 20))"},
        {"ID": 1, "box": [10, 10, 20, 20]},
    ],
    "timestamp": "2016-06-09T15:00:00Z",
    "utm": "18T",
    "gsd": 0.5,
    "img_width": 64,
    "img_height": 64,
    "cloud_cover": 3,
    "scan_direction": "Forward",
    "target_azimuth_dbl": 12.5,
    "off_nadir_angle_dbl": 20.1,
}


def test_fmow_good_metadata_reads() -> None:
    """Control: the base document the regression cases change is read ``ok``."""
    root = Path(tempfile.mkdtemp())
    try:
        (root / _FMOW_KEY).parent.mkdir(parents=True)
        (root / _FMOW_KEY).write_bytes(_JPEG)
        (root / _FMOW_KEY.replace(".jpg", ".json")).write_text(json.dumps(_GOOD_FMOW))
        assert read_item("fmow", root, _FMOW_KEY, root).status == "ok"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param('"cloud_cover": Infinity', id="cloud_cover-inf"),
        pytest.param('"cloud_cover": NaN', id="cloud_cover-nan"),
        pytest.param('"img_width": 1' + "0" * 400, id="img_width-huge-int"),
        pytest.param(
            '"bounding_boxes": [{"ID": -1, "raw_location": "POLYGON ((10 20, 11 21))"}, '
            '{"ID": 1, "box": [1, "a", 3, 4]}]',
            id="box-non-number",
        ),
        pytest.param(
            '"bounding_boxes": [{"ID": 1, "box": [1, 2, 3, 4], "raw_location": [1]}]', id="raw_location-list"
        ),
    ],
)
def test_fixed_fmow_metadata_crash(change: str) -> None:
    """The good fMoW JSON with one field changed as shown is malformed metadata, not a crash (these
    once escaped ``read_item`` as OverflowError / ValueError / TypeError)."""
    key = change.split(":")[0].strip('"')
    text = json.dumps({k: v for k, v in _GOOD_FMOW.items() if k != key})[:-1] + ", " + change + "}"
    root = Path(tempfile.mkdtemp())
    try:
        (root / _FMOW_KEY).parent.mkdir(parents=True)
        (root / _FMOW_KEY).write_bytes(_JPEG)
        (root / _FMOW_KEY.replace(".jpg", ".json")).write_text(text)
        item = read_item("fmow", root, _FMOW_KEY, root)
        assert item.status == "malformed_metadata"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_fixed_deeply_nested_metadata() -> None:
    """A metadata file of 100 000 ``[`` (deeply nested JSON) is malformed metadata, not a crash."""
    root = Path(tempfile.mkdtemp())
    try:
        (root / _FMOW_KEY).parent.mkdir(parents=True)
        (root / _FMOW_KEY).write_bytes(_JPEG)
        (root / _FMOW_KEY.replace(".jpg", ".json")).write_text("[" * 100_000)
        item = read_item("fmow", root, _FMOW_KEY, root)
        assert item.status == "malformed_metadata"
    finally:
        shutil.rmtree(root, ignore_errors=True)

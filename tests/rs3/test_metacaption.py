"""Meta-caption field derivations (§7.3) on hand-made metadata, and the template families."""

from __future__ import annotations

import re

import pytest

from rs5m.rs3 import metacaption as mc
from rs5m.rs3.templates import FAMILIES, PLACEHOLDERS, pick_template, render
from rs5m.sample.rs3 import fmow_json


@pytest.mark.parametrize(
    ("box", "where"),
    [
        ([10, 10, 60, 60], "top-left and top-center blocks"),
        ([60, 60, 30, 30], "center block"),
        ([0, 100, 160, 50], "bottom-left and bottom-center blocks"),
        ([120, 0, 40, 150], "top-right and center-right blocks"),
        ([0, 0, 160, 160], "top-left and top-center blocks"),  # equal areas: grid order decides
    ],
)
def test_relative_location(box, where):
    assert mc.relative_location(box, 160, 160) == where


def test_relative_location_outside_image():
    with pytest.raises(mc.MetadataError):
        mc.relative_location([500, 500, 10, 10], 160, 160)


def test_polygon_centroid_skips_closing_vertex():
    lat, lon = mc.polygon_centroid("POLYGON ((10 20, 12 20, 12 22, 10 22, 10 20))")
    assert (lat, lon) == (21.0, 11.0)
    with pytest.raises(mc.MetadataError):
        mc.polygon_centroid("POLYGON EMPTY")


def test_fmow_fields_from_json():
    meta = fmow_json("place_of_worship", -33.9, 151.2, 7, "AUS", "56H", [60, 60, 30, 30], 160)
    meta["gsd"], meta["cloud_cover"], meta["off_nadir_angle_dbl"] = 2.6, 12, 33.1
    fields, rec = mc.fmow_fields(meta, "ignored", "msrgb")
    assert fields == {
        "class_label": "place of worship",
        "relative_location": "center block",
        "gsd": "2.60m",
        "utm_zone": "56H",
        "timestamp": "15 o'clock, July 9, 2016",
        "cloud_cover": "12%",
        "scan_direction": "forward",
        "target_azimuth": "314.30°",
        "off_nadir": "33.10°",
    }
    assert rec["country_code"] == "AU" and rec["month"] == 7 and rec["lat"] == pytest.approx(-33.9)
    (out,) = mc.finish([("uid-1", "fmow", fields, rec)], seed=1)
    assert out.fields["season"] == "Winter"  # July in the southern hemisphere
    assert out.fields["place"].endswith(", Australia")
    assert "{" not in out.text and "place of worship" in out.text and "Winter" in out.text
    del meta["gsd"]
    assert mc.fmow_fields(meta, "x", "msrgb")[0]["gsd"] == "2.00m"  # multi_resolution_dbl for msrgb


@pytest.mark.parametrize("drop", ["timestamp", "utm", "bounding_boxes", "cloud_cover", "img_width"])
def test_fmow_missing_field_is_named(drop):
    meta = fmow_json("port", 1.0, 2.0, 1, "BRA", "23K", [0, 0, 10, 10], 160)
    del meta[drop]
    with pytest.raises(mc.MetadataError, match=drop if drop != "bounding_boxes" else "bounding"):
        mc.fmow_fields(meta, "port")


def test_ben_fields_utm_from_projection():
    meta = {
        "labels": ["Non-irrigated arable land", "Sea_and_ocean"],
        "coordinates": {"ulx": 341700, "uly": 4452840, "lrx": 342900, "lry": 4451640},
        "projection": 'PROJCS["WGS 84 / UTM zone 34N",GEOGCS["WGS 84"]]',
        "acquisition_date": "2017-06-13 10:10:31",
    }
    fields, rec = mc.ben_fields(meta)
    assert fields["labels"] == "non-irrigated arable land, sea-and-ocean"
    assert fields["utm_zone"] == "34T"  # zone from the WKT, MGRS band from the patch centre (40.2 N)
    assert fields["timestamp"] == "10 o'clock, June 13, 2017"
    assert 40 < rec["lat"] < 40.3 and 19 < rec["lon"] < 19.3
    meta["projection"] = 'GEOGCS["WGS 84"]'
    with pytest.raises(mc.MetadataError, match="UTM"):
        mc.ben_fields(meta)


def test_pub11_families():
    both = mc.pub11_fields(
        "yfcc15m", {"latitude": 45.43, "longitude": 12.33, "datetaken": "2006-10-03 10:28:46.0"}
    )
    assert both[0] == "yfcc_both" and both[2]["utm_zone"] == "33T" and both[2]["month"] == 10
    assert mc.pub11_fields("yfcc15m", {"latitude": 45.4, "longitude": 12.3})[0] == "yfcc_country"
    only_time = mc.pub11_fields(
        "yfcc15m", {"latitude": None, "longitude": None, "datetaken": "2013-11-12 05:26:58.0"}
    )
    assert only_time[0] == "yfcc_timestamp" and only_time[1]["timestamp"] == "5 o'clock, November 12, 2013"
    assert mc.pub11_fields("yfcc15m", {"latitude": 0.0, "longitude": 0.0, "datetaken": None}) is None
    red = mc.pub11_fields("redcaps", {"created_utc": 1584537674.0})
    assert red == ("redcaps", {"date": "March 18, 2020"}, {"month": 3})  # UTC, whatever the machine's zone
    assert mc.pub11_fields("laion2b", {"x": 1}) is None


def test_cc3m_tags_rule():
    tags = [{"tag": "a", "prob": 0.95}, {"tag": "b", "prob": 0.5}, {"tag": "c", "prob": 0.91}]
    assert mc.cc3m_tags(tags) == "a, c"
    more = [{"tag": t, "prob": 0.99} for t in "pqrs"]
    assert mc.cc3m_tags(more) == "p, q, r"
    assert mc.cc3m_tags([{"tag": "x", "prob": 0.3}, {"tag": "y", "prob": 0.6}]) == "y"
    assert mc.cc3m_tags([]) is None and mc.cc3m_tags(None) is None


def test_template_families():
    assert set(FAMILIES) == set(PLACEHOLDERS)
    for family, templates in FAMILIES.items():
        assert len(set(templates)) >= 50, family
        for t in templates:
            assert set(re.findall(r"{(\w+)}", t)) == PLACEHOLDERS[family], (family, t)


def test_template_pick_is_deterministic():
    assert pick_template("ben", "u1", 7) == pick_template("ben", "u1", 7)
    picks = {pick_template("ben", f"u{i}", 7)[0] for i in range(200)}
    assert len(picks) > 30
    with pytest.raises(KeyError, match="season"):
        render("ben", "u1", 7, {"labels": "x", "utm_zone": "1N", "timestamp": "t"})


def test_finish_without_location_has_no_place():
    (out,) = mc.finish([("u", "yfcc_timestamp", {"timestamp": "t"}, {"month": 1})], seed=0)
    assert "place" not in out.fields and out.geo.get("country") is None and "t" in out.text

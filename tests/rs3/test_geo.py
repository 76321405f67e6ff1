"""Geo helpers and statistics on hand-made values and known points."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rs5m.rs3 import geo, geostats


@pytest.mark.parametrize(
    ("month", "lat", "season"),
    [
        (1, 48.8, "Winter"),
        (7, 40.6, "Summer"),
        (7, -33.9, "Winter"),
        (1, -22.9, "Summer"),
        (4, 10.0, "Spring"),
        (4, -10.0, "Fall"),
        (10, -1.0, "Spring"),
        (12, 0.0, "Winter"),
        (3, None, None),
    ],
)
def test_season_by_hemisphere(month, lat, season):
    assert geo.season(month, lat) == season


def test_utm_parsing():
    assert geo.parse_utm_label("18T") == (18, "T")
    assert geo.parse_utm_label(" 5x ") == (5, "X")
    assert geo.parse_utm_label("61T") is None and geo.parse_utm_label("18I") is None
    assert geo.parse_utm_label(None) is None
    wkt = 'PROJCS["WGS 84 / UTM zone 34N",GEOGCS["WGS 84"],UNIT["metre",1]]'
    assert geo.parse_utm_wkt(wkt) == (34, "N")
    assert geo.parse_utm_wkt('PROJCS["WGS 84 / UTM zone 7S"]') == (7, "S")
    assert geo.parse_utm_wkt('GEOGCS["WGS 84"]') is None


def test_utm_zone_and_inverse():
    assert geo.utm_zone(40.71, -74.0) == "18T"  # New York
    assert geo.utm_zone(-33.87, 151.21) == "56H"  # Sydney
    assert geo.utm_zone(60.5, 5.5) == "32V"  # Norway exception (would be 31V)
    lat, lon = geo.utm_to_latlon(500000, 0, 31, "N")
    assert lat == pytest.approx(0, abs=1e-6) and lon == pytest.approx(3, abs=1e-6)
    lat, lon = geo.utm_to_latlon(500000, 10_000_000 - 1_000_000, 31, "S")
    assert lat < -8.9 and lon == pytest.approx(3, abs=1e-6)


def test_country_names_and_nearest_places():
    assert geo.country_name("USA") == "United States"
    assert geo.country_name("fr") == "France"
    assert geo.country_name("BOL") == "Bolivia"  # common name preferred over the official long form
    assert geo.country_name("XXX") is None and geo.country_name(None) is None
    assert geo.alpha2("DEU") == "DE"
    paris, sydney, edge = geo.nearest_places([48.8566, -33.8688, 65.0], [2.3522, 151.2093, -179.99])
    assert (paris.city, paris.country_code) == ("Paris", "FR")
    assert sydney.country_code == "AU"
    assert edge.country_code in {"RU", "US"}  # across the antimeridian: great-circle nearest
    assert geo.nearest_places([], []) == []


def test_valid_latlon_and_time():
    assert geo.valid_latlon(10, 20) and not geo.valid_latlon(0, 0) and not geo.valid_latlon(None, 1)
    assert not geo.valid_latlon(91, 0) and not geo.valid_latlon("x", 3)
    when = geo.parse_time("2016-06-09T15:03:22Z")
    assert geo.format_timestamp(when) == "15 o'clock, June 9, 2016"
    assert (
        geo.format_timestamp(geo.parse_time("2013-11-02 05:26:58.0"), with_hour=False) == "November 2, 2013"
    )
    assert geo.parse_time("0000-00-00 00:00:00") is None and geo.parse_time("") is None
    assert geo.parse_time("2017-06-13 10:10:31") == dt.datetime(2017, 6, 13, 10, 10, 31)


def test_geo_statistics_on_known_points(tmp_path):
    rows = [
        {
            "source": "fmow",
            "lat": 40.7,
            "lon": -74.0,
            "country": "United States",
            "utm_zone": "18T",
            "month": 7,
        },
        {
            "source": "fmow",
            "lat": 40.6,
            "lon": -73.9,
            "country": "United States",
            "utm_zone": "18T",
            "month": 7,
        },
        {"source": "ben", "lat": 40.2, "lon": 19.1, "country": "Albania", "utm_zone": "34T", "month": 1},
        {"source": "cc3m", "lat": None, "lon": None, "country": None, "utm_zone": None, "month": None},
    ]
    pq.write_table(pa.Table.from_pylist(rows[:2]), tmp_path / "a.parquet")
    pq.write_table(pa.Table.from_pylist(rows[2:]), tmp_path / "b.parquet")
    files = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    counts = geostats.geo_counts(files)
    assert counts["country"] == [{"key": "United States", "n": 2}, {"key": "Albania", "n": 1}]
    assert counts["utm_zone"][0] == {"key": "18T", "n": 2}
    assert counts["month"] == [{"key": "January", "n": 1}, {"key": "July", "n": 2}]
    assert {r["key"]: r["located"] for r in counts["source"]} == {"ben": 1, "cc3m": 0, "fmow": 2}
    points = geostats.geo_points(files)
    assert len(points) == 3
    png = geostats.world_map(points, tmp_path / "map.png", "test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert geostats.geo_counts([])["country"] == []
    assert "### by country" in geostats.counts_markdown(counts)

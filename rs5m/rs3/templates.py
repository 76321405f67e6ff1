"""Meta-caption template families (written for this project; not the RS5M ``geometa_template.json``).

Each family is the product of clause pools: every clause is a complete sentence, so any combination
reads correctly, and every template of a family uses exactly the family's placeholders. Families and
their placeholders are in ``PLACEHOLDERS``; every family has at least 50 templates (checked in tests).
A template is picked per sample by ``pick_template`` (a hash of seed and uid, so rebuilds agree).
"""

from __future__ import annotations

import hashlib
import itertools

_FMOW_SCENE = [
    "this satellite image, taken over {place} in {season}, shows the {class_label} in the "
    "{relative_location} of the frame.",
    "captured above {place} during {season}, the scene places the {class_label} in the {relative_location}.",
    "an overhead pass near {place} in {season} recorded the {class_label}, which sits in the "
    "{relative_location}.",
    "seen from orbit over {place} in {season}, the {class_label} occupies the {relative_location} of the "
    "picture.",
    "the {class_label} in the {relative_location} of this {season} scene lies near {place}.",
    "a {season} acquisition near {place}: the {class_label} can be found in the {relative_location}.",
    "near {place}, a {season} overpass captured the {class_label} across the {relative_location}.",
    "over {place} in {season}, the sensor framed the {class_label} within the {relative_location}.",
]
_FMOW_GSD = [
    "the ground sample distance is {gsd}.",
    "each pixel covers about {gsd} on the ground.",
    "its spatial resolution is {gsd} per pixel.",
    "the image resolves the ground at {gsd}.",
]
_FMOW_WHEN = [
    "it lies in utm zone {utm_zone} and was acquired at {timestamp}.",
    "the location falls in utm zone {utm_zone}; the acquisition time is {timestamp}.",
    "recorded at {timestamp}, the scene belongs to utm zone {utm_zone}.",
    "geotagged to utm zone {utm_zone}, it was captured at {timestamp}.",
]
_FMOW_VIEW = [
    "cloud cover was {cloud_cover}, the scan ran {scan_direction}, the target azimuth was {target_azimuth} "
    "and the off-nadir angle {off_nadir}.",
    "with {cloud_cover} cloud cover and a {scan_direction} scan, the view has a target azimuth of "
    "{target_azimuth} and an off-nadir angle of {off_nadir}.",
    "the sensor scanned {scan_direction} under {cloud_cover} cloud cover, looking at azimuth "
    "{target_azimuth} from {off_nadir} off nadir.",
    "viewing geometry: target azimuth {target_azimuth}, off-nadir {off_nadir}; scan direction "
    "{scan_direction}; cloud cover {cloud_cover}.",
]
_BEN_COVER = [
    "this Sentinel-2 patch from {season} covers {labels}.",
    "a {season} Sentinel-2 view showing {labels}.",
    "in this {season} multispectral patch, the land cover includes {labels}.",
    "land cover labelled {labels} appears in this {season} satellite patch.",
    "captured in {season}, the patch contains {labels}.",
    "a 1.2 km Sentinel-2 patch from {season}, with {labels}.",
    "the {season} scene is annotated with {labels}.",
    "Sentinel-2 observed {labels} here during {season}.",
]
_BEN_WHEN = [
    "it lies in utm zone {utm_zone}, acquired at {timestamp}.",
    "the acquisition time was {timestamp}, in utm zone {utm_zone}.",
    "utm zone {utm_zone}; sensed at {timestamp}.",
    "recorded at {timestamp} within utm zone {utm_zone}.",
    "the patch belongs to utm zone {utm_zone} and dates from {timestamp}.",
    "georeferenced in utm zone {utm_zone}, it was imaged at {timestamp}.",
    "its tile sits in utm zone {utm_zone}; the overpass happened at {timestamp}.",
]
_PHOTO_VERBS = ["photographed", "captured", "shot", "taken", "recorded", "snapped", "imaged"]
_NEAR = [
    "near {place}.",
    "close to {place}.",
    "in the vicinity of {place}.",
    "around {place}.",
    "not far from {place}.",
    "in the area of {place}.",
    "by {place}.",
    "at a spot near {place}.",
]
_AT_TIME = [
    "at {timestamp}.",
    "with a capture time of {timestamp}.",
    "on a date recorded as {timestamp}.",
    "with the timestamp {timestamp}.",
    "at the recorded time {timestamp}.",
    "according to its metadata at {timestamp}.",
    "at {timestamp}, per the camera clock.",
    "at what the camera logged as {timestamp}.",
]
_BOTH = [
    "near {place} in {season}, at {timestamp}.",
    "around {place} during {season}; the camera logged {timestamp}.",
    "close to {place} in {season}, with a capture time of {timestamp}.",
    "in the vicinity of {place} on a {season} day, at {timestamp}.",
    "not far from {place}, in {season}, at {timestamp}.",
    "in the area of {place} during {season}, timestamped {timestamp}.",
    "by {place} in {season}; recorded at {timestamp}.",
    "at a spot near {place}, {season}, {timestamp}.",
]
_TAG_OPEN = [
    "an image tagged",
    "a picture labelled",
    "a photo annotated",
    "image labels:",
    "automatic tags for this picture:",
    "a scene described by these tags:",
    "content tags:",
]
_TAG_BODY = [
    "{tags}.",
    "{tags}, according to an image classifier.",
    "{tags}, by machine labelling.",
    "{tags} (machine-assigned).",
    "{tags}, as detected automatically.",
    "{tags}, from automatic annotation.",
    "{tags}, predicted with high confidence.",
    "{tags}, among its visual concepts.",
]
_POST_OPEN = [
    "posted",
    "shared",
    "uploaded",
    "published",
    "submitted to reddit",
    "first posted online",
    "put online",
]
_POST_WHEN = [
    "on {date}.",
    "on {date} (UTC).",
    "on {date}; the capture date may differ.",
    "on {date}, per the post record.",
    "on {date} by its photographer.",
    "on the date {date}.",
    "on {date}, according to the post.",
    "on {date}, as listed with the photo.",
]


def _product(*pools: list[str], sep: str = " ") -> list[str]:
    return [sep.join(parts) for parts in itertools.product(*pools)]


FAMILIES: dict[str, list[str]] = {
    "fmow": _product(_FMOW_SCENE, _FMOW_GSD, _FMOW_WHEN, _FMOW_VIEW),
    "ben": _product(_BEN_COVER, _BEN_WHEN),
    "yfcc_country": _product(_PHOTO_VERBS, _NEAR),
    "yfcc_timestamp": _product(_PHOTO_VERBS, _AT_TIME),
    "yfcc_both": _product(_PHOTO_VERBS, _BOTH),
    "cc3m": [
        f"{o} {b}" if o.endswith(":") else f"{o} {b.replace('{tags}', 'with {tags}', 1)}"
        for o, b in itertools.product(_TAG_OPEN, _TAG_BODY)
    ],
    "redcaps": _product(_POST_OPEN, _POST_WHEN),
}

PLACEHOLDERS: dict[str, frozenset[str]] = {
    "fmow": frozenset(
        {
            "place",
            "season",
            "class_label",
            "relative_location",
            "gsd",
            "utm_zone",
            "timestamp",
            "cloud_cover",
            "scan_direction",
            "target_azimuth",
            "off_nadir",
        }
    ),
    "ben": frozenset({"season", "labels", "utm_zone", "timestamp"}),
    "yfcc_country": frozenset({"place"}),
    "yfcc_timestamp": frozenset({"timestamp"}),
    "yfcc_both": frozenset({"place", "season", "timestamp"}),
    "cc3m": frozenset({"tags"}),
    "redcaps": frozenset({"date"}),
}


def pick_template(family: str, uid: str, seed: int) -> tuple[int, str]:
    """``(index, template)`` of ``family`` for one sample, a pure function of ``seed`` and ``uid``."""
    templates = FAMILIES[family]
    digest = hashlib.sha256(f"{seed}:{family}:{uid}".encode()).digest()
    index = int.from_bytes(digest[:8], "big") % len(templates)
    return index, templates[index]


def render(family: str, uid: str, seed: int, fields: dict[str, str]) -> tuple[int, str]:
    """Fill the template picked for ``uid``; ``fields`` must hold exactly the family's placeholders."""
    missing = PLACEHOLDERS[family] - fields.keys()
    if missing:
        raise KeyError(f"{family}: missing fields {sorted(missing)}")
    index, template = pick_template(family, uid, seed)
    return index, template.format(**fields)

"""Semantic-localisation metrics Rsu, Ras, Rda, Rmi (reference §11.3; SemanticLocalizationMetrics SLM).

``prob`` is the probability map as read back from the probmap JPEG (gray / 255, float in [0, 1]);
``polygons`` are the AIR-SLT ``points`` of one query: a list of polygons of ``[x, y]`` vertices.
Behaviour kept from the official code, including its edge cases:

* an empty mask (no polygon pixel inside the image) gives ``Rsu = nan`` (0 * inf there);
* no attention centre at all: Ras uses only the first region with offset = its radius, so Ras = 1;
* a region with no attention centre inside its circle has offset = radius (ratio 1) and Rda 0;
* attention centres are the 8-connected components of the maxima of the 5x box-blurred map under a
  1000 px maximum filter, at their integer centroid, kept when ``prob >= 0.5`` there.

A region whose radius rounds to 0 px makes the offset ratio undefined: ``ValueError`` here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
from scipy import ndimage

RSU_BETA = 0.707
RSU_EPS = 1e-7
RAS_EXPAND = 1.5
RAS_FILTER_TIMES = 5
RAS_BOX = (50, 50)
RAS_MAX_FILTER = 1000
RAS_SCALE_BETA = 3
ATTENTION_MIN_PROB = 0.5
RDA_ETA = 0.5
RMI_WEIGHTS = (0.4, 0.35, 0.25)  # Rsu, 1 - Ras, Rda
METRIC_NAMES = ("Rsu", "Rda", "Ras", "Rmi")

Polygon = Sequence[Sequence[float]]
Centre = tuple[int, int]


def gray_to_prob(gray: np.ndarray) -> np.ndarray:
    """uint8 probmap -> probability in [0, 1] (``gray / 255.0``)."""
    return np.asarray(gray, dtype=np.float64) / 255.0


def polygon_mask(shape: tuple[int, int], polygons: Sequence[Polygon]) -> np.ndarray:
    """Float mask (H, W) with 1 inside the polygons: one ``cv2.fillPoly`` call on int32-truncated vertices."""
    mask = np.zeros(shape, dtype=np.float64)
    cv2.fillPoly(mask, [np.array(p, np.int32) for p in polygons], 1)
    return mask


def rsu(prob: np.ndarray, mask: np.ndarray) -> float:
    """``1 - exp(-beta * sum(PM) / (sum(P) - sum(PM) + eps) * (HW - sum(M)) / sum(M))``; nan if M is empty."""
    inside = float(np.sum(prob * mask))
    total = float(np.sum(prob))
    area = float(np.sum(mask))
    if area == 0:
        return math.nan
    left = inside / (total - inside + RSU_EPS)
    right = (mask.shape[0] * mask.shape[1] - area) / area
    return float(1 - np.exp(-RSU_BETA * left * right))


def region_centre_radius(polygon: Polygon) -> tuple[int, int, int]:
    """Centre = int(mean vertex) per axis; radius = int(1.5 * mean vertex distance to that int centre)."""
    pts = np.asarray(polygon, dtype=np.float64)
    sx = sy = 0.0
    for x, y in pts:  # sequential sums, as the reference's reduce
        sx += x
        sy += y
    cx, cy = int(sx / len(pts)), int(sy / len(pts))
    dist = [np.linalg.norm(p - np.array([cx, cy])) for p in pts]
    return cx, cy, int(np.mean(dist) * RAS_EXPAND)


def attention_centres(prob: np.ndarray) -> list[Centre]:
    """Attention centres ``(x, y)``, most probable first (see module docstring)."""
    gray = np.asarray(prob * 255.0, dtype=np.uint8)
    for _ in range(RAS_FILTER_TIMES):
        gray = cv2.boxFilter(gray, ddepth=-1, ksize=RAS_BOX)
    peak = ndimage.maximum_filter(gray, size=RAS_MAX_FILTER)
    binary = (np.where(peak == gray, gray, 0) > 0).astype(np.uint8)
    labels, n = ndimage.label(binary, structure=np.ones((3, 3), dtype=int))
    if n == 0:
        return []
    centroids = ndimage.center_of_mass(binary, labels, range(1, n + 1))
    centres = [(int(c), int(r)) for r, c in centroids]
    centres.sort(key=lambda c: prob[c[1]][c[0]], reverse=True)
    return [c for c in centres if prob[c[1]][c[0]] >= ATTENTION_MIN_PROB]


def _dist(x: int, y: int, c: Centre) -> float:
    return float(np.linalg.norm(np.array([x, y]) - np.array(c)))


def _regions(polygons: Sequence[Polygon]) -> list[tuple[int, int, int]]:
    regions = [region_centre_radius(p) for p in polygons]
    if not regions:
        raise ValueError("a SeLo query needs at least one region")
    if any(r == 0 for _, _, r in regions):
        raise ValueError("a region has radius 0 px (degenerate polygon)")
    return regions


def ras(polygons: Sequence[Polygon], prob: np.ndarray, centres: list[Centre] | None = None) -> float:
    """Attention shift: ``g`` = mean(offset_i / r_i); ``(e^{3g} - 1) / (e^3 - 1)``; lower is better."""
    regions = _regions(polygons)
    centres = attention_centres(prob) if centres is None else centres
    if not centres:
        offsets = [float(regions[0][2])]
    else:
        offsets = []
        for x, y, r in regions:
            near = [d for d in (_dist(x, y, c) for c in centres) if d <= r]
            offsets.append(float(np.mean(near)) if near else float(r))
    g = float(np.mean([off / reg[2] for off, reg in zip(offsets, regions, strict=False)]))
    return float((np.exp(RAS_SCALE_BETA * g) - 1) / (np.exp(RAS_SCALE_BETA) - 1))


def rda(polygons: Sequence[Polygon], prob: np.ndarray, centres: list[Centre] | None = None) -> float:
    """Attention dispersion: per region N centres within r; N<=1 -> N, else 0.5(1 - d/r) + e^{-0.5(N+2)}."""
    regions = _regions(polygons)
    centres = attention_centres(prob) if centres is None else centres
    values = []
    for x, y, r in regions:
        near = [c for c in centres if _dist(x, y, c) <= r]
        if len(near) <= 1:
            values.append(float(len(near)))
            continue
        mid = np.average(np.asarray(near, dtype=np.float64), axis=0)
        spread = float(np.mean([np.linalg.norm(mid - np.array(c)) for c in near])) / r
        values.append(0.5 * (1 - spread) + float(np.exp(-RDA_ETA * (len(near) + 2))))
    return float(np.mean(values))


def rmi(rsu_value: float, rda_value: float, ras_value: float) -> float:
    """``0.4 Rsu + 0.35 (1 - Ras) + 0.25 Rda``."""
    w_su, w_as, w_da = RMI_WEIGHTS
    return w_su * rsu_value + w_as * (1 - ras_value) + w_da * rda_value


def slm_metrics(prob: np.ndarray, polygons: Sequence[Polygon]) -> dict[str, float]:
    """All four metrics of one query: ``{"Rsu", "Rda", "Ras", "Rmi"}``."""
    centres = attention_centres(prob)
    su = rsu(prob, polygon_mask(prob.shape, polygons))
    as_ = ras(polygons, prob, centres)
    da = rda(polygons, prob, centres)
    return {"Rsu": su, "Rda": da, "Ras": as_, "Rmi": rmi(su, da, as_)}


def mean_metrics(per_query: Sequence[dict[str, float]]) -> dict[str, float]:
    """Dataset score: plain mean over queries per metric (nan propagates, as ``np.mean`` does)."""
    if not per_query:
        raise ValueError("no SeLo queries scored")
    return {k: float(np.mean([m[k] for m in per_query])) for k in METRIC_NAMES}

"""SeLo metrics on small hand-computed cases (reference §11.3, official SLM behaviour)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rs5m.ml.evaluation import slm

SQUARE = [[60, 60], [140, 60], [140, 140], [60, 140]]  # centre (100, 100), r = int(1.5 * 40 * sqrt 2) = 84
E3 = math.exp(3) - 1


def _disks(shape: tuple[int, int], centres: list[tuple[int, int]], radius: int = 40, value: float = 1.0):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    prob = np.zeros(shape)
    for x, y in centres:
        prob[(xx - x) ** 2 + (yy - y) ** 2 <= radius**2] = value
    return prob


def test_constants_match_reference() -> None:
    assert (slm.RSU_BETA, slm.RSU_EPS, slm.RAS_EXPAND, slm.RAS_FILTER_TIMES) == (0.707, 1e-7, 1.5, 5)
    assert (slm.RAS_SCALE_BETA, slm.RDA_ETA, slm.RMI_WEIGHTS) == (3, 0.5, (0.4, 0.35, 0.25))
    assert (slm.RAS_BOX, slm.RAS_MAX_FILTER, slm.ATTENTION_MIN_PROB) == ((50, 50), 1000, 0.5)


def test_polygon_mask_truncates_vertices_and_fills_inclusive() -> None:
    mask = slm.polygon_mask((4, 4), [[[1.9, 1.2], [2.7, 1.0], [2.2, 2.9], [1.0, 2.0]]])
    assert mask.dtype == np.float64
    assert mask.sum() == 4 and mask[1:3, 1:3].all()


def test_rsu_hand_computed() -> None:
    prob = np.full((4, 4), 0.1)
    prob[1:3, 1:3] = 0.5
    mask = slm.polygon_mask(prob.shape, [[[1, 1], [2, 1], [2, 2], [1, 2]]])
    # sum(PM) = 2.0, sum(P) - sum(PM) = 1.2, (HW - sum M) / sum M = 12 / 4
    expected = 1 - math.exp(-0.707 * (2.0 / (1.2 + 1e-7)) * 3.0)
    assert slm.rsu(prob, mask) == pytest.approx(expected, rel=1e-12)


def test_rsu_edge_cases() -> None:
    mask = slm.polygon_mask((4, 4), [[[1, 1], [2, 1], [2, 2], [1, 2]]])
    assert slm.rsu(np.zeros((4, 4)), mask) == 0.0
    assert slm.rsu(mask.copy(), mask) == 1.0  # all attention inside: sum(PM) / eps
    empty = slm.polygon_mask((4, 4), [[[10, 10], [12, 10], [12, 12]]])
    assert empty.sum() == 0
    assert math.isnan(slm.rsu(np.full((4, 4), 0.3), empty))


def test_region_centre_radius_uses_int_centre() -> None:
    assert slm.region_centre_radius(SQUARE) == (100, 100, 84)
    # centre (6/3, 3/3) = (2, 1); mean distance (sqrt5 + sqrt2 + sqrt5) / 3 = 1.962 -> int(2.94) = 2
    assert slm.region_centre_radius([[0, 0], [3, 0], [3, 3]]) == (2, 1, 2)


def test_ras_rda_one_centre_inside() -> None:
    g = 30 / 84
    assert slm.ras([SQUARE], None, centres=[(100, 130)]) == pytest.approx((math.exp(3 * g) - 1) / E3)
    assert slm.rda([SQUARE], None, centres=[(100, 130)]) == 1.0


def test_ras_rda_two_centres_inside() -> None:
    centres = [(100, 130), (100, 70)]
    assert slm.ras([SQUARE], None, centres=centres) == pytest.approx((math.exp(3 * 30 / 84) - 1) / E3)
    expected = 0.5 * (1 - 30 / 84) + math.exp(-0.5 * (2 + 2))
    assert slm.rda([SQUARE], None, centres=centres) == pytest.approx(expected)


def test_region_with_no_attention_centre() -> None:
    other = [
        [300, 300],
        [340, 300],
        [340, 340],
        [300, 340],
    ]  # centre (320, 320), r = int(1.5 * 20 sqrt2) = 42
    centres = [(100, 130)]
    g = (30 / 84 + 42 / 42) / 2
    assert slm.ras([SQUARE, other], None, centres=centres) == pytest.approx((math.exp(3 * g) - 1) / E3)
    assert slm.rda([SQUARE, other], None, centres=centres) == pytest.approx((1.0 + 0.0) / 2)
    assert slm.ras([SQUARE], None, centres=[(300, 300)]) == 1.0  # outside its circle: offset = r


def test_no_attention_centre_at_all_uses_first_region_only() -> None:
    far = [[300, 300], [340, 300], [340, 340], [300, 340]]
    assert slm.ras([SQUARE, far], None, centres=[]) == 1.0
    assert slm.rda([SQUARE, far], None, centres=[]) == 0.0


def test_degenerate_region_is_rejected() -> None:
    with pytest.raises(ValueError, match="radius 0"):
        slm.ras([[[5, 5], [5, 5], [5, 5]]], None, centres=[])


def test_attention_centres_single_blob() -> None:
    centres = slm.attention_centres(_disks((400, 400), [(150, 250)]))
    assert len(centres) == 1
    assert abs(centres[0][0] - 150) <= 2 and abs(centres[0][1] - 250) <= 2


def test_attention_centres_equal_peaks_and_low_peaks() -> None:
    centres = slm.attention_centres(_disks((400, 800), [(200, 200), (600, 200)]))
    assert len(centres) == 2
    assert sorted(round(x, -2) for x, _ in centres) == [200, 600]
    assert slm.attention_centres(_disks((400, 400), [(150, 250)], value=0.4)) == []  # below 0.5
    assert slm.attention_centres(np.zeros((300, 300))) == []


def test_rmi_weights_and_full_metrics() -> None:
    assert slm.rmi(1.0, 1.0, 0.0) == pytest.approx(1.0)
    assert slm.rmi(0.5, 0.2, 0.4) == pytest.approx(0.4 * 0.5 + 0.35 * 0.6 + 0.25 * 0.2)
    prob = _disks((400, 400), [(100, 100)])
    metrics = slm.slm_metrics(prob, [SQUARE])
    assert metrics["Rda"] == 1.0
    assert metrics["Ras"] < 0.05  # the centre sits on the region centre
    assert metrics["Rmi"] == pytest.approx(slm.rmi(metrics["Rsu"], metrics["Rda"], metrics["Ras"]))


def test_mean_metrics_is_plain_mean_and_propagates_nan() -> None:
    a = {"Rsu": 0.2, "Rda": 1.0, "Ras": 0.5, "Rmi": 0.4}
    b = {"Rsu": 0.4, "Rda": 0.0, "Ras": 1.0, "Rmi": 0.2}
    assert slm.mean_metrics([a, b]) == pytest.approx({"Rsu": 0.3, "Rda": 0.5, "Ras": 0.75, "Rmi": 0.3})
    assert math.isnan(slm.mean_metrics([a, {**b, "Rsu": math.nan}])["Rsu"])
    with pytest.raises(ValueError):
        slm.mean_metrics([])

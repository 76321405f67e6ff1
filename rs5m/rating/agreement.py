"""Inter-rater agreement on 1..5 scales: Fleiss' kappa (any number of raters per pair) and Cohen's kappa.

Kappa is ``None`` where it is undefined (every rating in one category, so chance agreement is 1).
Scores piled at the top of the scale give low kappa despite high raw agreement (the kappa paradox),
so the observed agreement is reported beside it.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from rs5m.rating.rubric import SCALE_MAX, SCALE_MIN

_K = SCALE_MAX - SCALE_MIN + 1


def fleiss_kappa(counts: np.ndarray) -> tuple[float | None, float]:
    """``(kappa, observed agreement)`` from an items x categories count matrix, each row summing to >= 2.

    Rows may sum to different numbers of raters (per-item agreement uses the item's own count).
    """
    counts = np.asarray(counts, dtype=float)
    n_i = counts.sum(axis=1)
    if counts.shape[0] == 0 or (n_i < 2).any():
        raise ValueError("every item needs at least two ratings")
    p_i = ((counts**2).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_bar = float(p_i.mean())
    p_j = counts.sum(axis=0) / counts.sum()
    p_e = float((p_j**2).sum())
    kappa = None if np.isclose(p_e, 1.0) else (p_bar - p_e) / (1 - p_e)
    return kappa, p_bar


def cohen_kappa(a: list[int], b: list[int], weights: str | None = None) -> float | None:
    """Cohen's kappa of two raters' paired 1..5 scores; ``weights='quadratic'`` for the weighted form."""
    if len(a) != len(b) or not a:
        raise ValueError("need two equally long, non-empty score lists")
    obs = np.zeros((_K, _K))
    for x, y in zip(a, b, strict=True):
        obs[x - SCALE_MIN, y - SCALE_MIN] += 1
    obs /= obs.sum()
    exp = np.outer(obs.sum(axis=1), obs.sum(axis=0))
    idx = np.arange(_K)
    if weights == "quadratic":
        w = (idx[:, None] - idx[None, :]) ** 2 / (_K - 1) ** 2
    elif weights is None:
        w = (idx[:, None] != idx[None, :]).astype(float)
    else:
        raise ValueError(f"unknown weights {weights!r}")
    denom = float((w * exp).sum())
    return None if np.isclose(denom, 0.0) else 1.0 - float((w * obs).sum()) / denom


def _mean(vals: list[float | None]) -> float | None:
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


def agreement_rows(ratings: list[dict[str, Any]], scales: list[str]) -> list[dict[str, Any]]:
    """One row per scale over pairs scored by two or more raters (broken marks are left out).

    Columns: scale, pairs, raters, fleiss_kappa, observed_agreement, cohen_kappa and
    weighted_kappa (means over rater pairs sharing at least two pairs).
    """
    out = []
    for scale in scales:
        by_uid: dict[str, dict[str, int]] = {}
        for r in ratings:
            if r.get(scale) is not None:
                by_uid.setdefault(r["uid"], {})[r["rater"]] = int(r[scale])
        multi = {u: m for u, m in by_uid.items() if len(m) >= 2}
        raters = sorted({rater for m in multi.values() for rater in m})
        row: dict[str, Any] = {"scale": scale, "pairs": len(multi), "raters": len(raters)}
        kappa = agree = None
        if multi:
            counts = np.zeros((len(multi), _K))
            for i, m in enumerate(multi.values()):
                for v in m.values():
                    counts[i, v - SCALE_MIN] += 1
            kappa, agree = fleiss_kappa(counts)
        cohen, weighted = [], []
        for r1, r2 in combinations(raters, 2):
            shared = [(m[r1], m[r2]) for m in multi.values() if r1 in m and r2 in m]
            if len(shared) >= 2:
                a, b = [s[0] for s in shared], [s[1] for s in shared]
                cohen.append(cohen_kappa(a, b))
                weighted.append(cohen_kappa(a, b, "quadratic"))
        row |= {
            "fleiss_kappa": kappa,
            "observed_agreement": agree,
            "cohen_kappa": _mean(cohen),
            "weighted_kappa": _mean(weighted),
        }
        out.append(row)
    return out

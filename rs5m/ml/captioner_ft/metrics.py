"""Caption metrics through pycocoevalcap: METEOR 1.5 (Java), BLEU-4 and CIDEr-D.

Contract: ``caption_metrics(refs, cands)`` takes ``refs[id] = [reference, ...]`` and ``cands[id] =
candidate`` (same ids) and returns ``{"meteor", "bleu4", "cider", "n"}`` (corpus-level, as the COCO
caption toolkit computes them). Texts are normalised by :func:`normalise` (lower case, punctuation to
spaces, single spaces) - the paper scored lower-cased whitespace tokens; the toolkit's PTB tokenizer is
not used because it needs Stanford CoreNLP. METEOR needs ``java``: with ``meteor="auto"`` and no java it
is ``None`` and ``meteor_skipped`` says why; ``"require"`` raises ``RuntimeError``; ``"skip"`` skips.
CIDEr's idf comes from the references of the scored set, so one image alone scores 0.
"""

from __future__ import annotations

import re
import shutil
from typing import Any

_PUNCT = re.compile(r"[^\w\s]")


def normalise(text: str) -> str:
    """Lower case, punctuation -> space, whitespace collapsed."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def java_available() -> bool:
    """Whether a ``java`` executable is on PATH (METEOR 1.5 runs as a jar)."""
    return shutil.which("java") is not None


def _prepared(refs: dict[str, list[str]], cands: dict[str, str]) -> tuple[dict, dict]:
    if set(refs) != set(cands):
        raise ValueError("refs and cands must have the same ids")
    if not refs:
        raise ValueError("nothing to score")
    if any(not r for r in refs.values()):
        raise ValueError("every id needs at least one reference")
    gts = {k: [normalise(r) for r in refs[k]] for k in sorted(refs)}
    res = {k: [normalise(cands[k])] for k in sorted(refs)}
    return gts, res


def meteor_scores(sets: list[tuple[dict[str, list[str]], dict[str, str]]]) -> list[float]:
    """Corpus METEOR 1.5 of each (refs, cands) set, in one JVM (start-up ~10-20 s: the paraphrase table).

    Raises ``RuntimeError`` without java.
    """
    if not java_available():
        raise RuntimeError("METEOR needs java on PATH (pycocoevalcap runs meteor-1.5.jar)")
    from pycocoevalcap.meteor.meteor import Meteor

    prepared = [_prepared(refs, cands) for refs, cands in sets]
    scorer = Meteor()
    try:
        return [float(scorer.compute_score(gts, res)[0]) for gts, res in prepared]
    finally:
        scorer.meteor_p.stdin.close()
        scorer.meteor_p.kill()
        scorer.meteor_p.wait()


def meteor_score(refs: dict[str, list[str]], cands: dict[str, str]) -> float:
    """Corpus METEOR 1.5 of one set (see :func:`meteor_scores`)."""
    return meteor_scores([(refs, cands)])[0]


def bleu4_score(refs: dict[str, list[str]], cands: dict[str, str]) -> float:
    """Corpus BLEU-4 (pycocoevalcap ``Bleu(4)``, closest reference length)."""
    from pycocoevalcap.bleu.bleu import Bleu

    gts, res = _prepared(refs, cands)
    score, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return float(score[3])


def cider_score(refs: dict[str, list[str]], cands: dict[str, str]) -> float:
    """CIDEr-D as in pycocoevalcap (x10 scale, sigma 6, idf from these references)."""
    from pycocoevalcap.cider.cider import Cider

    gts, res = _prepared(refs, cands)
    score, _ = Cider().compute_score(gts, res)
    return float(score)


def caption_metrics_many(
    sets: list[tuple[dict[str, list[str]], dict[str, str]]], meteor: str = "auto"
) -> list[dict[str, Any]]:
    """:func:`caption_metrics` for several sets, sharing one METEOR JVM."""
    use = meteor == "require" or (meteor == "auto" and java_available())
    met = meteor_scores(sets) if use else [None] * len(sets)
    out = []
    for (refs, cands), m in zip(sets, met, strict=True):
        row: dict[str, Any] = {"n": len(refs), "meteor": None if m is None else round(m, 6)}
        if m is None:
            row["meteor_skipped"] = "meteor=skip" if meteor == "skip" else "java not found on PATH"
        row["bleu4"] = round(bleu4_score(refs, cands), 6)
        row["cider"] = round(cider_score(refs, cands), 6)
        out.append(row)
    return out


def caption_metrics(
    refs: dict[str, list[str]], cands: dict[str, str], meteor: str = "auto"
) -> dict[str, Any]:
    """METEOR, BLEU-4 and CIDEr of ``cands`` against ``refs`` (module contract)."""
    return caption_metrics_many([(refs, cands)], meteor)[0]

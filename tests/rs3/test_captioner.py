"""Captioner: re-rank and rotation-pick logic on hand-made embeddings, determinism and provenance on
the tiny random BLIP-2 with tiny CLIP rankers."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from rs5m.ml.captioner import Captioner, final_rule, get_captioner
from tests.rs3.conftest import tiny_config


class _FakeRanker:
    def __init__(self, scores: dict[str, float]):
        self.scores = scores

    def embed_texts(self, texts):
        return torch.tensor([[self.scores[t], math.sqrt(1 - self.scores[t] ** 2), 0.0] for t in texts])


class _FakeSampler:
    device, dtype = "cpu", torch.float32


def _fake_captioner(**over) -> Captioner:
    a = _FakeRanker({"t0": 0.9, "t1": 0.8, "t2": 0.1, "t3": 0.7, "t4": 0.85})
    b = _FakeRanker({"t0": 0.75, "t4": 0.6, "t1": 0.95})
    cfg = tiny_config(**over)
    cfg.ranker_a.keep, cfg.ranker_b.keep = 3, 2
    return Captioner(cfg, _FakeSampler(), a, b)


def test_rerank_and_rotation_pick_on_known_scores():
    cap = _fake_captioner(final_rule="top1")
    cands = [{"text": f"t{i}", "n": 1} for i in range(5)]
    img = torch.tensor([1.0, 0.0, 0.0])
    rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]] * 2)  # similarity alternates between s and c
    res = cap._one("u", cands, img, img, rot, {})
    prov = res.provenance
    assert prov["kept_a"] == [0, 4, 1] and prov["kept_b"] == [1, 0]
    assert prov["top1"] == "t1" and prov["rotation_pick"] == "t0"  # 0.75 vs 0.66 varies least
    assert res.caption == "t1" and res.rule == "top1"
    by_text = {c["text"]: c for c in prov["candidates"]}
    assert by_text["t2"]["score_b"] is None and by_text["t4"]["score_b"] == pytest.approx(0.6)
    assert by_text["t4"]["rotation_var"] is None
    assert by_text["t0"]["rotation_var"] == pytest.approx(
        ((0.75 - math.sqrt(1 - 0.75**2)) / 2) ** 2, abs=1e-6
    )
    rot_res = _fake_captioner(final_rule="rotation")._one("u", [dict(c) for c in cands], img, img, rot, {})
    assert rot_res.caption == "t0" and rot_res.rule == "rotation"


def test_no_candidates_is_empty_caption():
    res = _fake_captioner()._one("u", [], None, None, None, {"seed": 1})
    assert res.status == "empty_caption" and res.caption is None and res.provenance["candidates"] == []


def test_final_rule_is_a_function_of_seed_and_uid():
    rules = [final_rule(f"fmow-{i:04d}", 2023, "uid") for i in range(400)]
    assert rules == [final_rule(f"fmow-{i:04d}", 2023, "uid") for i in range(400)]
    assert 150 < rules.count("top1") < 250
    assert rules != [final_rule(f"fmow-{i:04d}", 7, "uid") for i in range(400)]
    assert final_rule("x", 1, "top1") == "top1" and final_rule("x", 1, "rotation") == "rotation"


@pytest.fixture(scope="module")
def images():
    return [Image.new("RGB", (96, 96), (40 * i, 120, 200 - 30 * i)) for i in range(3)]


def test_tiny_models_deterministic_and_provenance_complete(images):
    cfg = tiny_config()
    cap = get_captioner(cfg)
    assert get_captioner(cfg) is cap  # loaded once per process
    uids = ["ben-a", "ben-b", "ben-c"]
    first, second = cap.caption(uids, images), cap.caption(uids, images)
    assert [r.caption for r in first] == [r.caption for r in second]
    assert [r.provenance for r in first] == [r.provenance for r in second]
    for res in first:
        prov = res.provenance
        assert res.status == "ok" and res.caption == prov["final"]
        assert prov["captioner"] == {
            "model": "tiny-random-blip2",
            "revision": None,
            "adapter": None,
            "adapter_sha256": None,
            "dtype": "fp32",
        }
        assert prov["decoding"] | {} == {
            "do_sample": True, "n_samples": 6, "top_p": 0.95, "top_k": 50, "max_length": 12, "prompt": None
        }  # fmt: skip
        assert prov["ranker_a"]["keep"] == 4 and prov["ranker_b"]["keep"] == 2 and prov["rotation"]["n"] == 4
        cands = prov["candidates"]
        assert sum(c["n"] for c in cands) <= 6 and all(c["score_a"] is not None for c in cands)
        assert sum(c["score_b"] is not None for c in cands) == len(prov["kept_a"]) == min(4, len(cands))
        assert sum(c["rotation_var"] is not None for c in cands) == len(prov["kept_b"]) == min(2, len(cands))
        assert prov["rule"] == final_rule(res.uid, cfg.seed, "uid")
        assert res.caption == (prov["top1"] if prov["rule"] == "top1" else prov["rotation_pick"])

"""RS3 captioner: BLIP-2 samples -> CLIP re-rank A (keep 10) -> CLIP re-rank B (keep 5) -> rotation pick.

Contract of ``Captioner.caption(uids, images)`` (one result per image, in order):
- candidates are the distinct non-empty sampled texts (first-sampled order, with their sample count);
  none left -> status ``empty_caption``;
- ranker A scores every candidate by cosine similarity with the image and keeps ``ranker_a.keep``; ranker
  B scores those and keeps ``ranker_b.keep``; ties go to the earlier candidate. ``top1`` = B's best;
- rotation pick (reference §7.2 "ssl cap"): the rotation ranker embeds the preprocessed view rotated to
  ``rotations`` equal angles about its centre (corners filled with the normalisation mean, i.e. zero) and
  picks, among B's survivors, the caption whose similarity varies least (population variance) over them;
- the final caption is ``top1`` or the rotation pick: with ``final_rule="uid"`` by the parity of a hash of
  seed and uid (deterministic, about half each; the two may coincide); or always one of them;
- ``provenance`` holds captioner id, adapter, decoding parameters, rankers, every candidate with its
  scores (``score_b``/``rotation_var`` only where computed) and the rule that picked the final caption.
Models load once per process (``get_captioner`` caches by config), so a Dask worker loads them once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torchvision.transforms import functional as F

from rs5m.config import RS3Config
from rs5m.config.rs3 import RankerConfig
from rs5m.ml.blip2 import Blip2Sampler, load_blip2, resolve_device
from rs5m.ml.captioner_ft.adapter import adapter_fingerprint
from rs5m.ml.models import load_clip


@dataclass
class CaptionResult:
    """The outcome for one image; ``status`` is ``"ok"`` or ``empty_caption``."""

    uid: str
    status: str = "ok"
    caption: str | None = None
    rule: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


class Ranker:
    """An open_clip model scoring texts against images by cosine similarity."""

    def __init__(self, cfg: RankerConfig, device: str):
        precision = cfg.precision if device != "cpu" else "fp32"
        self.cfg = cfg
        self.device = device
        self.model, self.preprocess, self.tokenizer = load_clip(
            cfg.model, cfg.pretrained, cfg.checkpoint, device, precision, init_seed=cfg.init_seed
        )
        self.dtype = next(self.model.parameters()).dtype

    @torch.inference_mode()
    def embed_views(self, views: torch.Tensor) -> torch.Tensor:
        """Unit image embeddings of preprocessed views ``[N, 3, H, W]``."""
        emb = self.model.encode_image(views.to(self.device, self.dtype)).float()
        return torch.nn.functional.normalize(emb, dim=-1)

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit text embeddings."""
        emb = self.model.encode_text(self.tokenizer(list(texts)).to(self.device)).float()
        return torch.nn.functional.normalize(emb, dim=-1)

    def views(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The ranker's preprocessed views of ``images``."""
        return torch.stack([self.preprocess(img) for img in images])


def final_rule(uid: str, seed: int, rule: str) -> str:
    """``"top1"`` or ``"rotation"`` for one uid (see module contract)."""
    if rule != "uid":
        return rule
    digest = hashlib.sha256(f"{seed}:final:{uid}".encode()).digest()
    return "top1" if digest[0] % 2 == 0 else "rotation"


def batch_seed(seed: int, uids: Sequence[str]) -> int:
    """Sampling seed of one batch: a hash of the run seed and the batch's uids."""
    digest = hashlib.sha256(f"{seed}:sample:{','.join(uids)}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _distinct(samples: list[str]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for text in samples:
        if text:
            seen.setdefault(text, {"text": text, "n": 0})["n"] += 1
    return list(seen.values())


def _top(scores: torch.Tensor, idx: list[int], keep: int) -> list[int]:
    order = sorted(range(len(idx)), key=lambda j: (-float(scores[j]), idx[j]))
    return [idx[j] for j in order[:keep]]


class Captioner:
    """BLIP-2 sampler plus rankers A and B; ``caption`` implements the module contract."""

    def __init__(self, cfg: RS3Config, sampler: Blip2Sampler, ranker_a: Ranker, ranker_b: Ranker):
        self.cfg, self.sampler, self.ranker_a, self.ranker_b = cfg, sampler, ranker_a, ranker_b
        adapter = cfg.captioner.adapter
        self.adapter_sha256 = adapter_fingerprint(adapter) if adapter else None
        self.rotator = ranker_a if cfg.rotation_ranker == "a" else ranker_b
        self.angles = [i * 360.0 / cfg.rotations for i in range(cfg.rotations)]

    @classmethod
    def load(cls, cfg: RS3Config) -> Captioner:
        """Load BLIP-2 and both rankers on the configured device."""
        device = resolve_device(cfg.device)
        return cls(
            cfg, load_blip2(cfg.captioner, device), Ranker(cfg.ranker_a, device), Ranker(cfg.ranker_b, device)
        )

    def provenance_base(self) -> dict[str, Any]:
        """The run-level part of every sample's provenance."""
        c = self.cfg.captioner
        return {
            "captioner": {
                "model": c.model,
                "revision": c.revision,
                "adapter": c.adapter,
                "adapter_sha256": self.adapter_sha256,
                "dtype": c.dtype,
            },
            "decoding": {
                "do_sample": True,
                "n_samples": c.n_samples,
                "top_p": c.top_p,
                "top_k": c.top_k,
                "max_length": c.max_length,
                "prompt": c.prompt,
            },
            "ranker_a": self.cfg.ranker_a.model_dump(),
            "ranker_b": self.cfg.ranker_b.model_dump(),
            "rotation": {"n": self.cfg.rotations, "ranker": self.cfg.rotation_ranker, "fill": "mean"},
            "device": self.sampler.device,
            "dtypes": {"captioner": str(self.sampler.dtype), "ranker_a": str(self.ranker_a.dtype)}
            | {"ranker_b": str(self.ranker_b.dtype)},
        }

    def _rotation_embeddings(self, views: torch.Tensor) -> torch.Tensor:
        rotated = torch.stack(
            [F.rotate(views, a, F.InterpolationMode.BILINEAR, fill=0.0) for a in self.angles], 1
        )
        b, r = rotated.shape[:2]
        return self.rotator.embed_views(rotated.flatten(0, 1)).view(b, r, -1)

    def caption(self, uids: Sequence[str], images: Sequence[Image.Image]) -> list[CaptionResult]:
        """Caption one batch of images (module contract)."""
        seed = batch_seed(self.cfg.seed, uids)
        samples = self.sampler.sample(images, seed)
        cands = [_distinct(s) for s in samples]
        views_a = self.ranker_a.views(images)
        views_b = views_a if self.ranker_b is self.ranker_a else self.ranker_b.views(images)
        img_a, img_b = self.ranker_a.embed_views(views_a), self.ranker_b.embed_views(views_b)
        rot = self._rotation_embeddings(views_a if self.rotator is self.ranker_a else views_b)
        base = self.provenance_base() | {"seed": seed}
        return [
            self._one(uid, c, img_a[i], img_b[i], rot[i], base)
            for i, (uid, c) in enumerate(zip(uids, cands, strict=True))
        ]

    def _one(self, uid: str, cands: list[dict], img_a, img_b, rot, base: dict) -> CaptionResult:
        if not cands:
            return CaptionResult(uid, "empty_caption", provenance=base | {"candidates": []})
        texts = [c["text"] for c in cands]
        score_a = self.ranker_a.embed_texts(texts) @ img_a
        kept_a = _top(score_a, list(range(len(texts))), self.cfg.ranker_a.keep)
        text_b = self.ranker_b.embed_texts([texts[j] for j in kept_a])
        score_b = text_b @ img_b
        kept_b = _top(score_b, kept_a, self.cfg.ranker_b.keep)
        text_r = text_b if self.rotator is self.ranker_b else self.ranker_a.embed_texts(texts)[kept_a]
        sims = text_r[[kept_a.index(j) for j in kept_b]] @ rot.T  # [keep_b, rotations]
        var = sims.var(dim=1, unbiased=False)
        pick = kept_b[min(range(len(kept_b)), key=lambda k: (float(var[k]), k))]
        for j, c in enumerate(cands):
            c["score_a"] = round(float(score_a[j]), 6)
            c["score_b"] = round(float(score_b[kept_a.index(j)]), 6) if j in kept_a else None
            c["rotation_var"] = round(float(var[kept_b.index(j)]), 9) if j in kept_b else None
        rule = final_rule(uid, self.cfg.seed, self.cfg.final_rule)
        top1, rotation_pick = texts[kept_b[0]], texts[pick]
        final = top1 if rule == "top1" else rotation_pick
        prov = base | {
            "candidates": cands,
            "kept_a": kept_a,
            "kept_b": kept_b,
            "top1": top1,
            "rotation_pick": rotation_pick,
            "rule": rule,
            "final": final,
        }
        return CaptionResult(uid, "ok", final, rule, prov)


_CACHE: dict[str, Captioner] = {}
_LOCK = threading.Lock()


def get_captioner(cfg: RS3Config) -> Captioner:
    """The process-wide captioner for ``cfg`` (loaded on first use; later calls reuse it)."""
    key = json.dumps(
        cfg.model_dump(
            include={"captioner", "ranker_a", "ranker_b", "rotations", "rotation_ranker", "device"}
        ),
        sort_keys=True,
    )
    with _LOCK:
        if key not in _CACHE:
            _CACHE.clear()  # one model set per worker: a new config replaces the old (GPU memory)
            _CACHE[key] = Captioner.load(cfg)
        return _CACHE[key]

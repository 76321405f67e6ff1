"""BLIP-2 LoRA fine-tune on CPU: tiny random BLIP-2, RSITMD-layout fixture, metrics on hand-made pairs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rs5m.config.captioner import FinetuneConfig, FixtureSpec, load_finetune_config
from rs5m.ml.captioner_ft.adapter import adapter_fingerprint
from rs5m.ml.captioner_ft.data import data_fingerprint, read_split, write_fixture
from rs5m.ml.captioner_ft.metrics import bleu4_score, caption_metrics, cider_score, java_available, normalise

torch.set_num_threads(1)
REFS = {"a": ["A red car, on the road."], "b": ["green trees in a forest"]}


def _cfg(tmp: Path, **kw) -> FinetuneConfig:
    base = dict(
        model="tiny-random-blip2",
        fixture={"out": str(tmp / "fx"), "n_train": 2, "n_test": 2, "image_size": 32},
        out_dir=str(tmp / "run"), lr=0.05, batch_size=10, max_steps=12, num_workers=0, precision="fp32",
        device="cpu", lora={"dropout": 0.0}, checkpoint_every=4, scheduler="constant",
    )  # fmt: skip
    return FinetuneConfig.model_validate(base | kw)


def test_bleu_cider_known_values() -> None:
    same = {k: v[0] for k, v in REFS.items()}
    assert normalise("A red car, on the road.") == "a red car on the road"
    assert bleu4_score(REFS, same) == pytest.approx(1.0, abs=1e-6)
    assert cider_score(REFS, same) == pytest.approx(10.0, abs=1e-6)  # two docs, idf log 2, cos 1, x10
    other = {"a": "xx yy zz", "b": "qq ww ee"}
    assert bleu4_score(REFS, other) == pytest.approx(0.0, abs=1e-6)
    assert cider_score(REFS, other) == 0.0
    with pytest.raises(ValueError):
        bleu4_score(REFS, {"a": "x"})


def test_meteor_known_values_or_clean_skip() -> None:
    same = {k: v[0] for k, v in REFS.items()}
    if not java_available():
        out = caption_metrics(REFS, same)
        assert out["meteor"] is None and "java" in out["meteor_skipped"]
        return
    out = caption_metrics(REFS, same)
    assert out["meteor"] == pytest.approx(1.0, abs=1e-6)
    assert out["bleu4"] == pytest.approx(1.0) and out["cider"] == pytest.approx(10.0)
    assert caption_metrics(REFS, same, meteor="skip")["meteor_skipped"] == "meteor=skip"


def test_fixture_from_real_rsitmd_captions(tmp_path: Path, shared_data: Path) -> None:
    spec = FixtureSpec(out=str(tmp_path), n_train=3, n_test=2, real_captions=str(shared_data / "rsitmd"))
    train, test = write_fixture(spec)
    tr = read_split(train)
    assert len(tr.images) == 3 and len(tr.pairs) == 15  # train layout: one name per image, 5 captions each
    names = Path(train.filenames).read_text().splitlines()
    real_caps = (shared_data / "rsitmd" / "train_caps.txt").read_text().splitlines()[:15]
    assert len(names) == 3 and [c for _, c in tr.pairs] == [c.strip() for c in real_caps]
    te = read_split(test)
    assert len(te.images) == 2 and all(len(v) == 5 for v in te.refs.values())
    assert data_fingerprint(tr) == data_fingerprint(read_split(train))


def test_lora_trains_adapter_only_round_trips_and_loads_into_captioner(tmp_path: Path) -> None:
    from peft import PeftModel

    from rs5m.config import RS3Config
    from rs5m.config.rs3 import CaptionerConfig
    from rs5m.ml.blip2 import load_blip2, tiny_blip2
    from rs5m.ml.captioner import Captioner
    from rs5m.ml.captioner_ft.train import finetune

    cfg = _cfg(tmp_path)
    rec = finetune(cfg)
    assert rec["steps"] == 12 and rec["trainable_params"] > 0
    first, last = sum(rec["losses"][:3]) / 3, sum(rec["losses"][-3:]) / 3
    assert last < first, rec["losses"]
    adapter = Path(rec["adapter"]["path"])
    assert rec["adapter"]["sha256"] == adapter_fingerprint(adapter)
    assert len(rec["data"]["train_fingerprint"]) == 64

    # round trip: a fresh base + saved adapter; base weights untouched, only LoRA (vision qkv/projection) set
    base, _ = tiny_blip2()
    ref = {k: v.clone() for k, v in base.state_dict().items()}
    peft_model = PeftModel.from_pretrained(base, adapter)
    lora = {k: v for k, v in peft_model.state_dict().items() if "lora_" in k}
    assert lora and all("vision_model" in k and ("qkv" in k or "projection" in k) for k in lora)
    assert any(float(v.abs().sum()) > 0 for k, v in lora.items() if "lora_B" in k)
    for k, v in peft_model.get_base_model().state_dict().items():
        if "lora_" not in k:
            key = k.replace(".base_layer", "")
            assert torch.equal(v, ref[key]), k

    # the RS3 captioner's loader merges it: vision qkv weights change, everything else stays
    plain = load_blip2(CaptionerConfig(model="tiny-random-blip2"), "cpu").model.state_dict()
    merged = load_blip2(
        CaptionerConfig(model="tiny-random-blip2", adapter=str(adapter)), "cpu"
    ).model.state_dict()
    changed = {k for k in plain if not torch.equal(plain[k], merged[k])}
    assert changed and all("vision_model" in k and ("qkv" in k or "projection" in k) for k in changed)

    rs3 = RS3Config(
        captioner=CaptionerConfig(model="tiny-random-blip2", adapter=str(adapter), n_samples=4, max_length=6),
        ranker_a={"model": "rs5m-tiny", "precision": "fp32", "keep": 3},
        ranker_b={"model": "rs5m-tiny", "precision": "fp32", "init_seed": 1, "keep": 2},
        rotations=4, device="cpu",
    )  # fmt: skip
    from PIL import Image

    img = Image.open(next((tmp_path / "fx" / "images").iterdir()))
    res = Captioner.load(rs3).caption(["u1"], [img])[0]
    assert res.provenance["captioner"]["adapter"] == str(adapter)
    if "adapter_sha256" in res.provenance["captioner"]:  # recorded once rs3 adopts the adapter fingerprint
        assert res.provenance["captioner"]["adapter_sha256"] == rec["adapter"]["sha256"]


def test_resume_continues_from_checkpoint(tmp_path: Path) -> None:
    from rs5m.ml.captioner_ft.train import finetune

    full = finetune(_cfg(tmp_path / "a", max_steps=6, checkpoint_every=2))
    part = finetune(_cfg(tmp_path / "b", max_steps=6, checkpoint_every=2).model_copy(update={"max_steps": 6}))
    assert part["losses"] == full["losses"]  # same run twice: deterministic on CPU
    # interrupted run: 4 steps with checkpoints, then the same settings continue from step 4
    ckpt_dir = tmp_path / "b" / "run" / "checkpoints"
    for p in sorted(ckpt_dir.glob("step-*.pt"))[-1:]:
        p.unlink()  # drop step 6: the newest left is step 4
    again = finetune(_cfg(tmp_path / "b", max_steps=6, checkpoint_every=2))
    assert again["resumed_from"].endswith("step-00000004.pt") and again["steps_this_run"] == 2
    assert again["losses"] == pytest.approx(full["losses"], rel=1e-5)
    assert again["adapter"]["sha256"] == full["adapter"]["sha256"]
    with pytest.raises(ValueError, match="other settings"):
        finetune(_cfg(tmp_path / "b", max_steps=6, checkpoint_every=2, lr=0.01))


def test_config_paper_preset_and_yaml(tmp_path: Path) -> None:
    cfg = FinetuneConfig(fixture={"out": "x"})
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (16, 16, 0.05)
    assert cfg.lora.target_modules == ["self_attn.qkv", "self_attn.projection"]
    assert (cfg.lr, cfg.weight_decay, cfg.epochs, cfg.precision) == (5e-5, 0.01, 30, "bf16")
    assert cfg.gradient_checkpointing
    (tmp_path / "c.yaml").write_text("model: tiny-random-blip2\nfixture: {out: fx}\nout_dir: o\n")
    got = load_finetune_config(tmp_path / "c.yaml", max_steps=3, **{"eval.enabled": False})
    assert got.fixture.out == str(tmp_path / "fx") and got.max_steps == 3 and not got.eval.enabled

"""The open_clip_train wrapper: argv mapping, log parsing, and one real run on our open_clip shards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rs5m.ml.models import load_clip
from rs5m.ml.training.launch import launch
from rs5m.ml.training.openclip_train import openclip_argv, parse_openclip_log


def _arg(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_argv_maps_the_config(make_cfg) -> None:
    cfg = make_cfg(
        engine="open_clip_train", precision="amp_bf16", accum_steps=2, grad_checkpointing=True,
        optim={"lr": 5e-6, "weight_decay": 0.5, "warmup_steps": 100, "grad_clip_norm": 50.0},
        model={"name": "ViT-B-32", "pretrained": "openai", "image_norm": "pub11"},
    )  # fmt: skip
    argv = openclip_argv(cfg, ["a.tar", "b.tar"], 1234, "logs")
    assert _arg(argv, "--train-data") == "a.tar::b.tar" and _arg(argv, "--train-num-samples") == "1234"
    assert (_arg(argv, "--lr"), _arg(argv, "--wd"), _arg(argv, "--warmup")) == ("5e-06", "0.5", "100")
    assert (_arg(argv, "--precision"), _arg(argv, "--accum-freq"), _arg(argv, "--grad-clip-norm")) == (
        "amp_bf16", "2", "50.0",
    )  # fmt: skip
    assert _arg(argv, "--pretrained") == "openai" and "--grad-checkpointing" in argv
    assert _arg(argv, "--image-mean") == "0.445" and _arg(argv, "--resume") == "latest"


def test_open_clip_train_refuses_what_it_cannot_do(make_cfg, tiny_shards) -> None:
    with pytest.raises(ValueError, match="open_clip-layout shards only"):
        make_cfg(engine="open_clip_train", peft={"r": 4})
    with pytest.raises(ValueError, match="open_clip-layout shards only"):
        make_cfg(engine="open_clip_train", data__layout="rs5m", data__shards=str(tiny_shards["rs5m"]))


def test_parse_log_line(tmp_path: Path) -> None:
    line = (
        "2026-11-26,20:54:29 | INFO | Train Epoch: 1 [48/64 (75%)] Data (t): 0.006 Batch (t): 0.199, "
        "40.1610/s, 40.1610/s/gpu LR: 0.000109 Logit Scale: 14.200 Contrastive_loss: 2.0795 (2.0809) "
        "Loss: 2.0795 (2.0809)"
    )
    (tmp_path / "out.log").write_text(f"noise\n{line}\n")
    (row,) = parse_openclip_log(tmp_path / "out.log", global_batch=8)
    assert row == {"step": 14, "epoch": 1, "loss": 2.0795, "lr": 0.000109, "samples_per_s": 40.161,
                   "logit_scale": 14.2}  # fmt: skip


def test_real_open_clip_train_run_exports_our_format(make_cfg) -> None:
    cfg = make_cfg("oc", engine="open_clip_train", epochs=1, max_steps=None, batch_size=16, data__workers=1)
    result = launch(cfg, nproc=1)
    assert result.steps == 4 and Path(result.files["loss_curve"]).is_file()
    doc = json.loads(Path(result.files["json"]).read_text())
    assert doc["engine"] == "open_clip_train" and doc["data_version"] == "tiny-v1"
    load_clip("rs5m-tiny", checkpoint=result.files["model"])  # plain state_dict, strict keys

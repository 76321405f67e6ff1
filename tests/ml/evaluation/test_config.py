"""EvalConfig loading: relative paths, overrides, validation messages, the sample deployment config."""

from __future__ import annotations

from pathlib import Path

import pytest

from rs5m.config.evaluate import EvalConfig, RetrievalDataset, load_eval_config

ROOT = Path(__file__).resolve().parents[3]


def test_relative_paths_resolve_against_the_yaml(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "eval.yaml"
    path.write_text(
        "model: {name: ViT-B/32, checkpoint: ../ckpt/RS5M_ViT-B-32.pt}\n"
        "zeroshot: [{name: AID, root: data/AID}]\n"
        "output_dir: out\n"
    )
    cfg = load_eval_config(path)
    assert cfg.model.checkpoint == str(tmp_path / "ckpt" / "RS5M_ViT-B-32.pt")
    assert cfg.zeroshot[0].root == str(tmp_path / "cfg" / "data" / "AID")
    assert cfg.resolved_cache_dir() == tmp_path / "cfg" / "out" / "cache"
    assert cfg.model.row_label() == "ViT-B/32 RS5M_ViT-B-32.pt (ours)"


def test_overrides_replace_model_and_top_level_keys(tmp_path: Path) -> None:
    path = tmp_path / "eval.yaml"
    path.write_text("zeroshot: [{name: AID, root: /data/AID}]\nbatch_size: 500\n")
    cfg = load_eval_config(path, model_name="ViT-H-14", model_pretrained="laion2b_s32b_b79k", batch_size=8)
    assert (cfg.model.name, cfg.model.pretrained, cfg.batch_size) == ("ViT-H-14", "laion2b_s32b_b79k", 8)
    assert cfg.model.quick_gelu is None
    assert load_eval_config(path, model_quick_gelu=False).model.quick_gelu is False


def test_cli_quick_gelu_flags(tmp_path: Path) -> None:
    from cli.commands.evaluate import _overrides
    from cli.main import build_parser

    parser = build_parser()
    for argv, want in ([], None), (["--quick-gelu"], True), (["--no-quick-gelu"], False):
        args = parser.parse_args(["evaluate", "--config", "e.yaml", *argv])
        assert _overrides(args)["model_quick_gelu"] is want
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--config", "e.yaml", "--quick-gelu", "--no-quick-gelu"])


def test_validation_messages(tmp_path: Path) -> None:
    path = tmp_path / "eval.yaml"
    path.write_text("zeroshot: [{name: A, root: x}, {name: A, root: y}]\n")
    with pytest.raises(ValueError, match="unique"):
        load_eval_config(path)
    path.write_text("zeroshot: [{name: A, root: x, typo: 1}]\n")
    with pytest.raises(ValueError, match="typo"):
        load_eval_config(path)
    with pytest.raises(ValueError, match="either csv or"):
        RetrievalDataset(name="r", images_dir="i")
    with pytest.raises(ValueError, match="go together"):
        RetrievalDataset(name="r", images_dir="i", captions_file="c")
    with pytest.raises(ValueError, match="precision"):
        EvalConfig.model_validate({"model": {"precision": "int4"}, "zeroshot": [{"name": "a", "root": "b"}]})


def test_sample_deployment_config_loads() -> None:
    cfg = load_eval_config(ROOT / "deployments" / "evaluate-sample.yaml")
    assert cfg.model.name == "rs5m-tiny"
    assert [d.name for d in cfg.zeroshot + cfg.retrieval + cfg.selo] == ["Scenes", "rsitmd", "AIR-SLT"]

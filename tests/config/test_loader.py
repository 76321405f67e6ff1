"""The one YAML loader: the path rule (relative to the YAML's folder, from any working directory), one-line
errors, and config hashes that do not depend on where the checkout sits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rs5m.config import load_build_config
from rs5m.config.captioner import load_finetune_config
from rs5m.config.detector import load_detector_job
from rs5m.config.evaluate import load_eval_config
from rs5m.config.loader import ConfigModel, load_config
from rs5m.config.rs3 import load_rs3_config
from rs5m.config.train import load_train_config

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENTS = REPO / "deployments"
LOADERS = {
    "sample.yaml": load_build_config,
    "full.yaml": load_build_config,
    "rs3-sample.yaml": load_rs3_config,
    "train-sample.yaml": load_train_config,
    "evaluate-sample.yaml": load_eval_config,
    "finetune-captioner-sample.yaml": load_finetune_config,
    "detector-sample.yaml": load_detector_job,
}


def test_every_deployment_config_has_a_loader() -> None:
    assert {p.name for p in DEPLOYMENTS.glob("*.yaml")} == set(LOADERS)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_deployment_configs_resolve_the_same_from_another_directory(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    here = LOADERS[name](DEPLOYMENTS / name).model_dump()
    monkeypatch.chdir(tmp_path)
    there = LOADERS[name](DEPLOYMENTS / name).model_dump()
    assert here == there
    if name in ("sample.yaml", "full.yaml"):  # root too: the repository's data/, not the worker's cwd
        assert there["root"] == str(REPO / "data")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


BUILD = """
root: ../data
sources:
  - name: yfcc15m
    files: ["../meta/yfcc/*.bz2", /abs/yfcc.bz2]
    options: {subset_file: ../meta/subset.tsv, language: en}
detector: ckpt/detector.pt
scoring: {model_name: rs5m-tiny, checkpoint: ~/clip.pt}
sample_server: {root: images, port: 18000}
rs3:
  sources: [{name: fmow, root: $RS5M_TEST_RS3/fmow}]
  captioner: {model: Salesforce/blip2-opt-6.7b, adapter: lora}
  ranker_a: {model: rs5m-tiny, checkpoint: a.pt, keep: 10}
"""


def test_build_paths_nested_lists_options_and_vars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RS5M_TEST_RS3", "/srv/rs3")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = load_build_config(_write(tmp_path / "conf" / "b.yaml", BUILD))
    conf = tmp_path / "conf"
    assert cfg.root == str(tmp_path / "data")
    assert cfg.sources[0].files == [str(tmp_path / "meta/yfcc/*.bz2"), "/abs/yfcc.bz2"]
    assert cfg.sources[0].options == {"subset_file": str(tmp_path / "meta/subset.tsv"), "language": "en"}
    assert cfg.detector == str(conf / "ckpt/detector.pt")
    assert cfg.scoring.checkpoint == str(tmp_path / "home/clip.pt")
    assert cfg.sample_server is not None and cfg.sample_server.root == str(conf / "images")
    assert cfg.rs3 is not None and cfg.rs3.sources[0].root == "/srv/rs3/fmow"
    assert cfg.rs3.captioner.model == "Salesforce/blip2-opt-6.7b"  # no such folder: a hub id
    assert cfg.rs3.captioner.adapter == str(conf / "lora")
    assert cfg.rs3.ranker_a.checkpoint == str(conf / "a.pt")


def test_a_default_root_is_next_to_the_yaml_and_overrides_are_cwd_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "conf" / "b.yaml", "sources: [{name: cc12m, files: [x.tsv]}]\n")
    assert load_build_config(path).root == str(tmp_path / "conf" / "data")
    monkeypatch.chdir(tmp_path)
    assert load_build_config(path, root="elsewhere").root == str(tmp_path / "elsewhere")
    train = _write(tmp_path / "conf" / "t.yaml", "data: {shards: 'a.tar::https://h/b.tar'}\nresume: auto\n")
    cfg = load_train_config(train, {"model.checkpoint": "ck.pt"})
    assert cfg.data.shards == f"{tmp_path / 'conf' / 'a.tar'}::https://h/b.tar"
    assert cfg.resume == "auto" and cfg.model.checkpoint == str(tmp_path / "ck.pt")


class _Small(ConfigModel):
    name: str = "x"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a: [1, 2\n", r"is not valid YAML: .*\(line 2, column 1\)"),
        ("- name: cc12m\n- name: sbu\n", "must be a mapping of keys at the top level, not a list"),
        ("name: y\ntypo: 1\n", "unknown key 'typo'"),
    ],
)
def test_bad_files_fail_in_one_line_naming_the_file(tmp_path: Path, text: str, match: str) -> None:
    path = _write(tmp_path / "c.yaml", text)
    with pytest.raises(ValueError, match=match) as err:
        load_config(path, _Small)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_file_and_nested_unknown_key(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config not found"):
        load_build_config(tmp_path / "nope.yaml")
    with pytest.raises(FileNotFoundError, match="is a directory"):
        load_build_config(tmp_path)
    path = _write(
        tmp_path / "b.yaml", "sources: [{name: cc12m, files: [x], bogus: 1}]\ndownload: {tmeout: 3}\n"
    )
    with pytest.raises(ValueError, match=r"unknown key 'sources\.0\.bogus'; unknown key 'download\.tmeout'"):
        load_build_config(path)


def _clone(dst: Path) -> Path:
    """A checkout-like tree holding deployments/sample.yaml."""
    shutil.copy(DEPLOYMENTS / "sample.yaml", _write(dst / "deployments" / "sample.yaml", ""))
    return dst / "deployments" / "sample.yaml"


def test_config_hash_is_the_same_in_two_clones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _clone(tmp_path / "one"), _clone(tmp_path / "x" / "two")
    monkeypatch.chdir(tmp_path / "one")
    cfg_a = load_build_config(a)
    monkeypatch.chdir(tmp_path)
    cfg_b = load_build_config(b, root=str(tmp_path / "other-root"), version="v9")
    assert cfg_a.sources != cfg_b.sources  # the paths really differ ...
    assert cfg_a.config_hash() == cfg_b.config_hash()  # ... the config does not
    other = _write(
        tmp_path / "one" / "deployments" / "other.yaml", a.read_text() + "outlier: {keep_top_vlm: 0.5}\n"
    )
    assert load_build_config(other).config_hash() != cfg_a.config_hash()


def test_train_hash_ignores_where_the_run_goes(tmp_path: Path) -> None:
    one = load_train_config(_write(tmp_path / "a" / "t.yaml", "data: {shards: s}\noutput_dir: runs/x\n"))
    two = load_train_config(_write(tmp_path / "b" / "c" / "t.yaml", "data: {shards: s}\noutput_dir: y\n"))
    assert one.config_hash() == two.config_hash()
    three = load_train_config(_write(tmp_path / "t.yaml", "data: {shards: s}\nbatch_size: 3\n"))
    assert three.config_hash() != one.config_hash()


def test_overlay_named_parameters_win_unless_not_given() -> None:
    from rs5m.config.loader import overlay

    got = overlay({"optim.lr": 1e-5, "device": "cuda"}, {"device": None, "max_steps": 4})
    assert got == {"optim.lr": 1e-5, "device": "cuda", "max_steps": 4}
    assert overlay(None, {"device": "cpu"}) == {"device": "cpu"}

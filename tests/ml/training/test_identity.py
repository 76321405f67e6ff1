"""Run folders hold one run: a resume on other data or settings is refused, never mixed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rs5m.ml.training.identity import RUN_FILE, claim_run_dir, data_fingerprint, run_key


def test_a_folder_holding_another_run_is_refused(make_cfg, tiny_shards, tmp_path: Path) -> None:
    cfg = make_cfg("run", data__version="v1")
    ident = claim_run_dir(cfg)
    assert json.loads((Path(cfg.output_dir) / RUN_FILE).read_text()) == ident
    assert claim_run_dir(cfg) == ident  # the same run: resumed
    moved = tmp_path / "moved"
    shutil.copytree(tiny_shards["open_clip"], moved)
    same_data = make_cfg("run", data__version="v1", data__shards=str(moved))
    assert claim_run_dir(same_data) == ident  # the same shards elsewhere are the same data
    with pytest.raises(ValueError, match=r"a training run of version v1 .* this run is version v2") as err:
        claim_run_dir(make_cfg("run", data__version="v2"))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="resuming would mix them"):
        claim_run_dir(make_cfg("run", data__version="v1", batch_size=4))


def test_a_run_folder_from_before_run_json_is_refused(make_cfg) -> None:
    cfg = make_cfg("old")
    (Path(cfg.output_dir) / "final").mkdir(parents=True)
    with pytest.raises(ValueError, match="unknown data"):
        claim_run_dir(cfg)


def test_run_key_names_version_and_changes_with_the_data(make_cfg, tiny_shards, tmp_path: Path) -> None:
    cfg = make_cfg(data__version="v3")
    assert run_key(cfg).startswith("v3-")
    fewer = tmp_path / "fewer"
    shutil.copytree(tiny_shards["open_clip"], fewer)
    next(iter(sorted(fewer.glob("*.tar")))).unlink()
    other = make_cfg(data__version="v3", data__shards=str(fewer))
    assert data_fingerprint(other.data) != data_fingerprint(cfg.data) and run_key(other) != run_key(cfg)

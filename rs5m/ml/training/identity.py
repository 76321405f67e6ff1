"""Which run a training folder holds, so a resume never mixes data or settings of two runs.

A run is identified by its dataset version, a fingerprint of its data (what the shards are, not where
they sit) and ``TrainConfig.config_hash``; ``<output_dir>/run.json`` records it. ``run_key`` names a run
folder after it (``<version>-<hash>``: ``train-georsclip`` puts every run under
``<root>/train-runs/<key>``), and ``claim_run_dir`` refuses, in one line, a folder that holds another
run: resuming there would continue someone else's weights on this data.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from rs5m.config.train import DataConfig, TrainConfig
from rs5m.core.io import write_json
from rs5m.ml.training.checkpoint import list_checkpoints
from rs5m.ml.training.data import data_version, shard_urls
from rs5m.ml.training.export import final_dir
from rs5m.shards.manifest import entry_path, read_entry

RUN_FILE = "run.json"


def _file_id(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _shard_id(url: str) -> str:
    if "://" in url or url.startswith("pipe:"):
        return url
    path = Path(url)
    entry = entry_path(path.parent, path.name)
    try:
        return read_entry(entry).sha256 if entry.is_file() else _file_id(path)
    except (OSError, ValueError):
        return _file_id(path)


def data_fingerprint(data: DataConfig) -> str:
    """Hash of what the training data is: each shard's name and sha256 (from its manifest entry, else its
    size and modification time), or each CSV's bytes and its image folder's listing."""
    sha = hashlib.sha256()
    if data.shards is not None:
        for url in shard_urls(data):
            sha.update(f"{Path(url).name}\t{_shard_id(url)}\n".encode())
    for src in data.csv:
        sha.update(Path(src.csv).read_bytes())
        for p in sorted(Path(src.images_dir).rglob("*")):
            if p.is_file():
                sha.update(f"{p.relative_to(src.images_dir)}\t{p.stat().st_size}\n".encode())
    return sha.hexdigest()[:16]


def run_identity(cfg: TrainConfig) -> dict[str, Any]:
    """``{"data_version", "data", "config"}``: the version, the data fingerprint and the config hash."""
    data = data_fingerprint(cfg.data)
    return {"data_version": data_version(cfg.data), "data": data, "config": cfg.config_hash()}


def run_key(cfg: TrainConfig, identity: dict[str, Any] | None = None) -> str:
    """Folder name of the run: ``<dataset version>-<12 hex of data and config>``."""
    ident = identity or run_identity(cfg)
    digest = hashlib.sha256(f"{ident['data']}:{ident['config']}".encode()).hexdigest()[:12]
    return f"{ident['data_version'] or 'unversioned'}-{digest}"


def _describe(ident: dict[str, Any]) -> str:
    return f"version {ident.get('data_version')} (data {ident.get('data')}, config {ident.get('config')})"


def claim_run_dir(cfg: TrainConfig) -> dict[str, Any]:
    """Record this run's identity in ``<output_dir>/run.json``, or check it against the one there.

    ``ValueError`` (one line) when the folder holds another run, or a run made before ``run.json`` existed:
    choose another ``output_dir`` (or delete the folder). Returns the identity.
    """
    out = Path(cfg.output_dir)
    ident = run_identity(cfg)
    path = out / RUN_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {"data_version": "unreadable run.json"}
        if old != ident:
            raise ValueError(
                f"{out} holds a training run of {_describe(old)}; this run is {_describe(ident)}: "
                "resuming would mix them. Use another output_dir (train-georsclip keys it by version and "
                "hash) or delete that folder"
            )
        return ident
    if list_checkpoints(out) or final_dir(out).exists():
        raise ValueError(
            f"{out} holds a training run of unknown data (made before {RUN_FILE} was recorded): "
            "use another output_dir or delete that folder"
        )
    os.makedirs(out, exist_ok=True)
    write_json(path, ident)
    return ident

"""Dataset-version bookkeeping for a build: the version folder, its saved config and completion marker.

A version folder holds ``config.json`` (the resolved config, its hash, the code version) and, once the
build finished, ``COMPLETE``. A version is tied to one config hash: building it again with the same
hash reuses every finished partition (a no-op once complete, which leaves ``config.json`` and
``COMPLETE`` as they were); a different config needs a new version name, since finished partitions of
the old config would otherwise be reused. Two builds of one version are kept apart by ``rs5m.core.locks``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from rs5m import __version__
from rs5m.core.io import write_json
from rs5m.core.layout import VersionLayout


class VersionedConfig(Protocol):
    """What this module needs of a build config (``rs5m.config.BuildConfig``; core imports no config)."""

    version: str

    def layout(self) -> VersionLayout: ...

    def config_hash(self) -> str: ...

    def model_dump(self) -> dict[str, Any]: ...


def lineage_db(cfg: VersionedConfig) -> Path:
    """The lineage database of the build's data root."""
    return cfg.layout().data_root.lineage_db


def prepare_version(cfg: VersionedConfig) -> Path:
    """Create (or reopen) the version folder and save the config; refuse to change a complete version."""
    layout = cfg.layout()
    vdir, saved = layout.dir, layout.config_file
    if saved.exists():
        old = json.loads(saved.read_text(encoding="utf-8"))
        if old.get("config_hash") != cfg.config_hash():
            state = "complete" if layout.complete_marker.exists() else "partly built"
            raise ValueError(
                f"version {cfg.version!r} is {state} with another config (hash {old.get('config_hash')} "
                f"!= {cfg.config_hash()}); build a new --version, or delete {vdir} to start it again"
            )
    vdir.mkdir(parents=True, exist_ok=True)
    _write_if_changed(
        saved, {"config": cfg.model_dump(), "config_hash": cfg.config_hash(), "code_version": __version__}
    )
    return vdir


def refuse_retry_of_complete(cfg: VersionedConfig) -> None:
    """``ValueError`` when ``--retry-failed`` targets a complete version.

    A complete version is immutable: re-downloading rows there would leave its validity, dedup and
    outlier results stale. The retry belongs in a new version built on it.
    """
    if cfg.layout().complete_marker.exists():
        raise ValueError(
            f"version {cfg.version!r} is complete and cannot change; retry its failed downloads in a new "
            f"version: rs5m build --version <new> --base-version {cfg.version} --retry-failed"
        )


def mark_complete(cfg: VersionedConfig) -> None:
    """Mark the version complete (written last, after the lineage load).

    Temporary files of writes cut off by a killed worker (``atomic_path``'s ``.<name>.*.tmp``, never
    read) are removed first, so a complete version holds only its outputs.
    """
    for tmp in cfg.layout().temp_files():
        tmp.unlink(missing_ok=True)
    _write_if_changed(cfg.layout().complete_marker, {"config_hash": cfg.config_hash()})


def _write_if_changed(path: Path, obj: dict[str, Any]) -> None:
    # A rebuild of a finished version keeps the files' times: "when was it built" stays true.
    try:
        same = json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(obj, default=str))
    except (OSError, ValueError):
        same = False
    if not same:
        write_json(path, obj)

"""Shard manifests: one entry per finished shard, merged into ``manifest.json`` per version.

Contract:
- ``_manifest/<shard>.json`` is written by the writer after the shard is renamed into place; it is
  the shard's done marker and holds name, subset, split, layout, sample count, bytes and sha256.
- ``write_manifest(dir, version)`` merges the entries into ``<dir>/manifest.json`` (sorted by shard
  name, with totals per subset and split); its content depends only on the shards.
- ``verify_manifest(dir)`` re-hashes every listed shard and returns a list of problems (empty = ok).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rs5m.fsio import write_json
from rs5m.shards.tario import iter_shard_samples

MANIFEST_NAME = "manifest.json"
ENTRY_DIR = "_manifest"
_HASH_CHUNK = 1 << 22


@dataclass(frozen=True)
class ShardInfo:
    """What the manifest records about one shard."""

    name: str
    subset: str
    split: str
    layout: str
    n_samples: int
    bytes: int
    sha256: str


def entry_path(shard_dir: str | os.PathLike[str], shard: str) -> Path:
    """Path of the manifest entry (done marker) of ``shard`` in ``shard_dir``."""
    return Path(shard_dir) / ENTRY_DIR / f"{shard}.json"


def write_entry(shard_dir: str | os.PathLike[str], info: ShardInfo) -> None:
    """Write one shard's manifest entry atomically (call only after the shard is in place)."""
    write_json(entry_path(shard_dir, info.name), asdict(info))


def read_entries(shard_dir: str | os.PathLike[str]) -> list[ShardInfo]:
    """Every shard entry under ``shard_dir/_manifest``, sorted by shard name."""
    entries = []
    for p in sorted((Path(shard_dir) / ENTRY_DIR).glob("*.json")):
        entries.append(ShardInfo(**json.loads(p.read_text(encoding="utf-8"))))
    return sorted(entries, key=lambda e: e.name)


def _totals(shards: list[ShardInfo]) -> dict[str, dict[str, dict[str, int]]]:
    totals: dict[str, dict[str, dict[str, int]]] = {}
    for s in shards:
        t = totals.setdefault(s.subset, {}).setdefault(s.split, {"n_shards": 0, "n_samples": 0, "bytes": 0})
        t["n_shards"] += 1
        t["n_samples"] += s.n_samples
        t["bytes"] += s.bytes
    return totals


def write_manifest(
    shard_dir: str | os.PathLike[str], version: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Merge the shard entries of ``shard_dir`` into ``manifest.json``; return the manifest."""
    shards = read_entries(shard_dir)
    layouts = sorted({s.layout for s in shards})
    manifest = {
        "version": version,
        "layouts": layouts,
        "n_shards": len(shards),
        "n_samples": sum(s.n_samples for s in shards),
        "bytes": sum(s.bytes for s in shards),
        "totals": _totals(shards),
        "shards": [asdict(s) for s in shards],
        **(extra or {}),
    }
    write_json(Path(shard_dir) / MANIFEST_NAME, manifest)
    return manifest


def read_manifest(shard_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Load ``manifest.json``; raise ``ValueError`` if it is missing or not valid JSON."""
    path = Path(shard_dir) / MANIFEST_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read manifest {path}: {exc}") from exc


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _count_samples(path: Path) -> int:
    return sum(1 for _ in iter_shard_samples(str(path)))


def verify_manifest(shard_dir: str | os.PathLike[str], count_samples: bool = False) -> list[str]:
    """Check every shard listed in the manifest; return human-readable problems (empty when valid).

    Checks: manifest readable, each listed shard present with the recorded size and sha256, no
    unlisted ``.tar`` in the folder, and (``count_samples=True``) the recorded sample count.
    """
    root = Path(shard_dir)
    try:
        manifest = read_manifest(root)
    except ValueError as exc:
        return [str(exc)]
    problems: list[str] = []
    listed = set()
    for entry in manifest.get("shards", []):
        name = entry["name"]
        listed.add(name)
        path = root / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        size = path.stat().st_size
        if size != entry["bytes"]:
            problems.append(f"{name}: size {size} != manifest {entry['bytes']}")
        elif file_sha256(path) != entry["sha256"]:
            problems.append(f"{name}: sha256 mismatch")
        elif count_samples and (n := _count_samples(path)) != entry["n_samples"]:
            problems.append(f"{name}: {n} samples != manifest {entry['n_samples']}")
    for path in sorted(root.glob("*.tar")):
        if path.name not in listed:
            problems.append(f"{path.name}: not in manifest")
    return problems

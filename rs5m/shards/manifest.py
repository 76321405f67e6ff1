"""Shard manifests: one entry per finished shard, merged into ``manifest.json`` per version.

Contract:
- ``_manifest/<shard>.json`` is written by the writer after the shard is renamed into place; it is
  the shard's done marker and holds name, subset, split, layout, sample count, bytes and sha256.
- ``write_manifest(dir, version)`` merges the entries into ``<dir>/manifest.json`` (sorted by shard
  name, with totals per subset and split); its content depends only on the shards.
- Entries and manifest carry a checksum of their own content (``rs5m.core.io.write_sealed_json``,
  field ``content_sha256``): ``read_entry``, ``read_entries`` and ``read_manifest`` raise
  ``ValueError`` naming a file that is unreadable, unsealed or changed after it was written.
- ``verify_manifest(dir)`` re-hashes every listed shard and returns a list of problems (empty = ok);
  ``verify_subset(dir, subset)`` does so for one subset's shards and checks their entries too.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rs5m.core.io import read_sealed_json, write_sealed_json
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
    """Write one shard's manifest entry, sealed, atomically (call only after the shard is in place)."""
    write_sealed_json(entry_path(shard_dir, info.name), asdict(info))


def read_entry(path: str | os.PathLike[str]) -> ShardInfo:
    """One shard entry; ``ValueError`` naming the file when it is corrupt (see the module contract)."""
    data = read_sealed_json(path)
    try:
        return ShardInfo(**data)
    except TypeError as exc:
        raise ValueError(f"{path}: not a shard entry: {exc}") from exc


def read_entries(shard_dir: str | os.PathLike[str]) -> list[ShardInfo]:
    """Every shard entry under ``shard_dir/_manifest`` sorted by name; ``ValueError`` on a corrupt one."""
    entries = [read_entry(p) for p in (Path(shard_dir) / ENTRY_DIR).glob("*.json")]
    return sorted(entries, key=lambda e: e.name)


def corrupt_entries(shard_dir: str | os.PathLike[str]) -> list[Path]:
    """The entry files under ``shard_dir/_manifest`` that ``read_entry`` rejects, sorted."""
    bad = []
    for p in sorted((Path(shard_dir) / ENTRY_DIR).glob("*.json")):
        try:
            read_entry(p)
        except ValueError:
            bad.append(p)
    return bad


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
    """Merge the shard entries of ``shard_dir`` into a sealed ``manifest.json``; return the manifest.

    Raises ``ValueError`` when an entry is corrupt (``corrupt_entries`` lists them).
    """
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
    write_sealed_json(Path(shard_dir) / MANIFEST_NAME, manifest)
    return manifest


def read_manifest(shard_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Load ``manifest.json`` (without its checksum field); ``ValueError`` if it is missing, not valid
    JSON, unsealed or changed after it was written."""
    try:
        return read_sealed_json(Path(shard_dir) / MANIFEST_NAME)
    except ValueError as exc:
        raise ValueError(f"cannot read manifest {exc}") from exc


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _count_samples(path: Path) -> int:
    return sum(1 for _ in iter_shard_samples(str(path)))


def _shard_problem(root: Path, entry: dict[str, Any], count_samples: bool) -> str | None:
    """What is wrong with one listed shard's file, or ``None``."""
    name = entry["name"]
    path = root / name
    if not path.is_file():
        return f"{name}: missing"
    size = path.stat().st_size
    if size != entry["bytes"]:
        return f"{name}: size {size} != manifest {entry['bytes']}"
    if file_sha256(path) != entry["sha256"]:
        return f"{name}: sha256 mismatch"
    if count_samples and (n := _count_samples(path)) != entry["n_samples"]:
        return f"{name}: {n} samples != manifest {entry['n_samples']}"
    return None


def verify_manifest(shard_dir: str | os.PathLike[str], count_samples: bool = False) -> list[str]:
    """Check every shard listed in the manifest; return human-readable problems (empty when valid).

    Checks: manifest readable and matching its checksum, each listed shard present with the recorded
    size and sha256, no unlisted ``.tar`` in the folder, and (``count_samples=True``) the recorded
    sample count.
    """
    root = Path(shard_dir)
    try:
        manifest = read_manifest(root)
    except ValueError as exc:
        return [str(exc)]
    problems: list[str] = []
    listed = set()
    for entry in manifest.get("shards", []):
        listed.add(entry["name"])
        if problem := _shard_problem(root, entry, count_samples):
            problems.append(problem)
    for path in sorted(root.glob("*.tar")):
        if path.name not in listed:
            problems.append(f"{path.name}: not in manifest")
    return problems


def verify_subset(shard_dir: str | os.PathLike[str], subset: str) -> list[str]:
    """Problems of the shards of one subset in ``shard_dir`` (empty when they can be trusted).

    Checks: the manifest is readable and matches its checksum; every shard of ``subset`` it lists is
    present with the recorded size and sha256, and has an intact entry equal to its listing; no shard
    or entry of ``subset`` in the folder is unlisted. Cost: every shard of the subset is read (hashed)
    once.
    """
    root = Path(shard_dir)
    try:
        manifest = read_manifest(root)
    except ValueError as exc:
        return [str(exc)]
    problems: list[str] = []
    listed = set()
    for entry in manifest.get("shards", []):
        if entry.get("subset") != subset:
            continue
        name = entry["name"]
        listed.add(name)
        if problem := _shard_problem(root, entry, count_samples=False):
            problems.append(problem)
            continue
        try:
            if asdict(read_entry(entry_path(root, name))) != entry:
                problems.append(f"{name}: entry differs from the manifest")
        except ValueError as exc:
            problems.append(f"{name}: entry {exc}")
    for path in sorted(root.glob(f"{subset}-*.tar")):
        if path.name not in listed:
            problems.append(f"{path.name}: not in manifest")
    for path in sorted((root / ENTRY_DIR).glob(f"{subset}-*.json")):
        if path.name.removesuffix(".json") not in listed:
            problems.append(f"{path.name}: entry not in manifest")
    return problems

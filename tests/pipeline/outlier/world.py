"""Builders of tiny version folders in the PUB11 image layout (download tars, validity, dedup, candidates)."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from rs5m.core.io import write_parquet
from rs5m.core.schema import make_uid
from rs5m.sample.images import aerial_image, encode, ordinary_image


@dataclass
class Row:
    """One downloaded row and what the earlier stages said about it."""

    uid: str
    key: str
    aerial: bool
    valid: bool = True
    dup_keep: bool = True
    in_tar: bool = True
    corrupt: bool = False
    caption: str = "an aerial photo"


@dataclass
class TinyVersion:
    """A version folder and the rows planted in each (source, part)."""

    root: Path
    rows: dict[tuple[str, str], list[Row]] = field(default_factory=dict)

    def expected(self, source: str, part: str) -> list[Row]:
        """Rows the scoring stage must score (every valid one, before dedup), sorted by uid."""
        return sorted((r for r in self.rows[(source, part)] if r.valid), key=lambda r: r.uid)

    def kept(self, source: str, part: str) -> list[Row]:
        """Rows the outlier decision pools (valid and dedup-kept), sorted by uid."""
        return [r for r in self.expected(source, part) if r.dup_keep]


def image_bytes(aerial: bool, seed: int, size: int = 48) -> bytes:
    """A small generated JPEG: aerial-looking or ordinary."""
    rng = np.random.default_rng(seed)
    return encode((aerial_image if aerial else ordinary_image)(rng, size, size), "jpg")


def _write_tar(path: Path, rows: list[Row], seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for i, row in enumerate(rows):
            if not row.in_tar:
                continue
            data = b"not an image at all" if row.corrupt else image_bytes(row.aerial, seed + i)
            members = {
                ".jpg": data,
                ".txt": row.caption.encode(),
                ".json": json.dumps({"uid": row.uid}).encode(),
            }
            for ext, payload in members.items():
                info = tarfile.TarInfo(row.key + ext)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))


def add_partition(version: TinyVersion, source: str, part: str, rows: list[Row], seed: int = 0) -> None:
    """Write one partition's tar, validity parquet and keyword candidates; remember its rows."""
    root = version.root
    shard = root / "download" / source / part / "00000.tar"
    _write_tar(shard, rows, seed)
    validity = {
        "uid": [r.uid for r in rows],
        "source": [source] * len(rows),
        "url": [f"http://example.invalid/{r.key}.jpg" for r in rows],
        "key": [r.key for r in rows],
        "shard": [str(shard)] * len(rows),
        "valid": [r.valid for r in rows],
    }
    write_parquet(root / "validity" / source / f"{part}.parquet", pa.table(validity))
    candidates = {"uid": validity["uid"], "source": validity["source"], "url": validity["url"]}
    candidates["caption"] = [r.caption for r in rows]
    write_parquet(root / "keyword" / source / f"{part}.parquet", pa.table(candidates))
    version.rows[(source, part)] = rows


def write_dedup(version: TinyVersion) -> None:
    """``dedup/decisions.parquet`` over every valid planted row."""
    rows = [(s, r) for (s, _), rs in version.rows.items() for r in rs if r.valid]
    table = pa.table(
        {
            "uid": [r.uid for _, r in rows],
            "source": [s for s, _ in rows],
            "dup_keep": [r.dup_keep for _, r in rows],
        }
    )
    write_parquet(version.root / "dedup" / "decisions.parquet", table.sort_by("uid"))


def plain_rows(source: str, part: str, n: int) -> list[Row]:
    """``n`` valid, kept rows alternating aerial / ordinary images."""
    return [Row(make_uid(source, f"{part}-{i}"), f"{i:09d}", aerial=i % 2 == 0) for i in range(n)]

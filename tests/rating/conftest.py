"""A tiny dataset version for the rating tool, built in code, and app / live-server fixtures.

Version ``v1`` under ``<tmp>/data``: sources cc12m and laion2b, six keyword rows each (i = 0..5).
- download: i=5 failed; the tar of cc12m lacks i=4's image (a pair whose image is missing);
  the stored shard path is relative to another folder (as after a build run elsewhere).
- validity: laion2b i=3 invalid. dedup: cc12m i=2 removed. outlier: i=1 removed in both sources.
- Kept pairs: cc12m 0, 3, 4 and laion2b 0, 2, 4.
- rs3: source ``ben`` with three captions: an image under the version folder, an absolute path
  elsewhere, and a missing file.
"""

from __future__ import annotations

import io
import json
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rs5m.core.layout import DataRoot
from rs5m.rating import sessions
from rs5m.rating.app import create_app
from rs5m.rating.sampling import SampleSpec, draw_sample
from rs5m.rating.store import RatingStore

SOURCES = ("cc12m", "laion2b")
KEPT = {"cc12m-0", "cc12m-3", "cc12m-4", "laion2b-0", "laion2b-2", "laion2b-4"}


def uid(source: str, i: int) -> str:
    """The uid of row ``i`` of ``source`` in the fake version."""
    return f"{source}-{i}"


def jpeg(color: tuple[int, int, int], size: int = 64) -> bytes:
    """A small solid-colour JPEG."""
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="JPEG")
    return buf.getvalue()


def _write(path: Path, rows: dict[str, list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), path)


def _tar(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def make_version(root: Path, version: str = "v1") -> Path:
    """Write the fake version described in the module docstring; return its folder."""
    vdir = root / "versions" / version
    dedup: dict[str, list[Any]] = {k: [] for k in ("uid", "dup_cluster", "dup_keep", "dup_reason", "source")}
    outlier: dict[str, list[Any]] = {k: [] for k in ("uid", "keep_outlier", "s_vlm", "c_rs")}
    for s, src in enumerate(SOURCES):
        uids = [uid(src, i) for i in range(6)]
        captions = [f"aerial view of {src} scene {i}" for i in range(6)]
        _write(vdir / "keyword" / src / "00000.parquet", {
            "uid": uids, "source": [src] * 6, "url": [f"http://127.0.0.1/{u}.jpg" for u in uids],
            "caption": captions, "keywords": [["aerial view"]] * 6,
        })  # fmt: skip
        part = vdir / "download" / src / "part-00000"
        ok = [i != 5 for i in range(6)]
        _write(part / "status.parquet", {
            "uid": uids, "source": [src] * 6, "url": [""] * 6,
            "status": ["success" if o else "failed" for o in ok],
            "reason": [None if o else "download_failed" for o in ok],
            "key": [f"{i:09d}" for i in range(6)],
            "shard": [f"elsewhere/download/{src}/part-00000/00000.tar" if o else None for o in ok],
        })  # fmt: skip
        members = {
            f"{i:09d}.jpg": jpeg((40 * i, 100 + 50 * s, 80)) for i in range(5) if (src, i) != ("cc12m", 4)
        }
        members |= {f"{i:09d}.txt": captions[i].encode() for i in range(5)}
        _tar(part / "00000.tar", members)
        valid = [not (src == "laion2b" and i == 3) for i in range(5)]
        _write(vdir / "validity" / src / "part-00000.parquet", {
            "uid": uids[:5], "valid": valid,
            "invalid_reason": [None if v else "corrupt_image" for v in valid],
        })  # fmt: skip
        for i in range(5):
            if valid[i]:
                dedup["uid"].append(uids[i])
                dedup["dup_cluster"].append("c1" if src == "cc12m" and i in (0, 2) else None)
                dedup["dup_keep"].append(not (src == "cc12m" and i == 2))
                dedup["dup_reason"].append("near_duplicate" if src == "cc12m" and i == 2 else None)
                dedup["source"].append(src)
        for i in range(5):
            if valid[i] and not (src == "cc12m" and i == 2):
                outlier["uid"].append(uids[i])
                outlier["keep_outlier"].append(i != 1)
                outlier["s_vlm"].append(0.5 - 0.1 * (i == 1))
                outlier["c_rs"].append(0.9)
    _write(vdir / "dedup" / "decisions.parquet", dedup)
    _write(vdir / "outlier" / "decisions.parquet", outlier)
    _make_rs3(vdir, root)
    return vdir


_PROVENANCE = {
    "captioner": {"model": "Salesforce/blip2-opt-6.7b", "adapter": "rsitmd-lora", "dtype": "float16"},
    "decoding": {"n_samples": 20},
    "candidates": [
        {"text": "a river between fields", "score_a": 0.31, "score_b": 0.29, "rotation_var": 1e-4}
    ],
    "seed": 7,
}


def _make_rs3(vdir: Path, root: Path) -> None:
    inside = vdir / "rs3" / "images" / "ben_0.jpg"
    outside = root / "elsewhere" / "ben_1.jpg"
    for path in (inside, outside):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg((10, 200, 10)))
    _write(vdir / "rs3" / "caption" / "ben" / "00000.parquet", {
        "uid": ["ben-0", "ben-1", "ben-2"], "source": ["ben"] * 3,
        "image_path": ["images/ben_0.jpg", str(outside), "images/missing.jpg"],
        "caption": ["a river between fields", "a forest", "a lake"],
        "blip2_caption": ["a river between fields", "a forest", "a lake"],
        "provenance": [json.dumps(_PROVENANCE)] * 3,
    })  # fmt: skip


@pytest.fixture()
def rating_root(tmp_path: Path) -> Path:
    """A data root holding version ``v1`` (and no lineage database yet)."""
    root = tmp_path / "data"
    make_version(root)
    return root


@pytest.fixture()
def store(rating_root: Path) -> Iterator[RatingStore]:
    """A rating store on the root's lineage database, closed after the test."""
    s = RatingStore(DataRoot.of(rating_root).ratings_db, idle_close_s=0.3)
    yield s
    s.close()


def serve_spec(store: RatingStore, root: Path, spec: SampleSpec) -> tuple[Any, list[dict[str, Any]]]:
    """The app for ``spec`` (its sample drawn and stored first) and the sample's items."""
    vdir = root / "versions" / spec.version
    items = store.call(sessions.ensure_sample, spec, lambda: draw_sample(vdir, spec))
    return create_app(store, spec, vdir, items), items


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def live_server(store: RatingStore, rating_root: Path) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """``(base URL, items)`` of the app for the kept pairs of ``v1``, served by uvicorn in a thread."""
    import uvicorn

    app, items = serve_spec(store, rating_root, SampleSpec("v1", n=6))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the rating server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", items
    server.should_exit = True
    thread.join(timeout=10)

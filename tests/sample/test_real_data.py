"""A world built from the real shared data (WHU-RS19 images, RSITMD / RS3 captions); skips without it."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from rs5m.sample import write_world
from rs5m.sample.plan import SourcePlan
from rs5m.sample.writers import PARQUET

PLANS = {
    "laion2b": SourcePlan(60, 16, {"missing_url": 1, "bad_url": 1}, duplicates=1, missing_images=1),
    "laioncoco": SourcePlan(40, 10, {"missing_caption": 1}, missing_images=0, url_dups=2),
}


def test_real_data_world(shared_data: Path, tmp_path: Path) -> None:
    exp = write_world(tmp_path, seed=5, real_data=shared_data, plans=PLANS)
    assert exp["real_data"] and list(exp["sources"]) == ["laion2b", "laioncoco"]
    laion = exp["sources"]["laion2b"]
    assert laion["keyword_hits"] == 16 + laion["planted"]["duplicate_record_hits"]
    assert exp["sources"]["laioncoco"]["kept"] == 39
    sentences = set((shared_data / "rsitmd" / "train_caps.txt").read_text(encoding="utf-8").splitlines())
    sentences = {" ".join(s.split()).rstrip(". ") for s in sentences}
    coco = pq.read_table(tmp_path / "laioncoco" / PARQUET["laioncoco"]).to_pylist()
    used = [c.split(" in this ")[0] for r in coco for c in r["all_captions"] if " in this " in c]
    assert used and any(u in {s.lower() for s in sentences} for u in used)
    aerial = [
        Path(tmp_path / "images" / u.split("/", 3)[3].split("?")[0])
        for u in exp["sources"]["laioncoco"]["planted"]["url_duplicates"]
    ]
    for path in aerial:  # laion2b hits re-used by laioncoco: real WHU-RS19 crops, <= 320 px
        with Image.open(path) as img:
            assert max(img.size) <= 320 and img.mode == "RGB"
    json.loads((tmp_path / "expected.json").read_text(encoding="utf-8"))

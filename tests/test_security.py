"""Security review points without a home elsewhere: secrets stay out of git, ``why`` never pastes paths
into SQL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rs5m.lineage.why import why

ROOT = Path(__file__).resolve().parents[1]


def test_env_file_is_git_ignored(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    res = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert res.returncode == 0, ".env (real credentials) must be ignored by git"
    assert subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT).returncode == 1


@pytest.mark.parametrize("name", ["v'1", 'v"; DROP TABLE x; --', "v']) UNION SELECT 1 --"])
def test_why_reads_a_version_folder_with_quotes_in_its_path(tmp_path: Path, name: str) -> None:
    vdir = tmp_path / name
    part = vdir / "ingest" / "laion2b"
    part.mkdir(parents=True)
    uid = "laion2b-0123456789abcdef"
    table = pa.table({"uid": [uid], "url": ["http://e.com/a.jpg"], "caption": ["a"], "extras": [None]})
    pq.write_table(table, part / "p.parquet")
    trail = why(vdir, uid)
    assert trail[0] == {
        "stage": "ingest",
        "decision": "kept",
        "url": "http://e.com/a.jpg",
        "caption": "a",
        "extras": None,
    }
    with pytest.raises(ValueError, match="neither a keyword candidate nor an ingest reject"):
        why(vdir, "laion2b-ffffffffffffffff")

"""Bounded memory: reading a 10x larger file does not raise peak RSS (peak resident set measured in a
fresh subprocess, after imports, for the reading alone). One parquet row group holding the whole file
is the worst case for parquet: with pyarrow's default ``pre_buffer=True`` (or no read buffer) the 10x
file's reading peaks ~50 MB higher, which this test catches. The default sizes take seconds; the 100x
variants are marked slow."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rs5m.sources._yfcc_sqlite import YFCC_FIELDS

SLACK_MB = 24.0  # buffers that settle in the first tens of MB read, and allocator noise

PROBE = """
import json, resource, sys
from rs5m.sources import get_adapter

def peak_mb():
    try:  # VmHWM: this process's peak resident set, as maxrss but readable at any time
        with open("/proc/self/status") as f:
            return next(int(x.split()[1]) for x in f if x.startswith("VmHWM")) / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

name, options, small, big = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
adapter = get_adapter(name)
opts = adapter.options_model(**options)
def read(path):
    return sum(b.table.num_rows + len(b.rejects) for b in adapter.read(path, opts))
read(small)  # lazy imports and first-use buffers
base = peak_mb()
out = {"rows_1x": read(small), "growth_1x": peak_mb() - base}
out |= {"rows_10x": read(big), "growth_10x": peak_mb() - base}
print(json.dumps(out))
"""


def _probe(name: str, small: Path, big: Path, **options: object) -> dict[str, float]:
    """Peak RSS growth (MB) of reading ``small`` then ``big`` in one fresh process, after a warm-up
    read of ``small``: the high-water mark only rises when reading ``big`` needs more memory."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, name, json.dumps(options), str(small), str(big)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _caption(rng: random.Random) -> str:
    return " ".join(rng.choice(["aerial", "view", "of", "the", "harbour", "city", "map"]) for _ in range(12))


def _parquet(path: Path, n: int) -> Path:
    rng = random.Random(n)
    table = pa.table(
        {
            "URL": [f"http://img.example.com/{rng.getrandbits(64):x}/{i}.jpg" for i in range(n)],
            "TEXT": [
                _caption(rng) + f" {rng.getrandbits(2048):x}" for _ in range(n)
            ],  # ~600 B, incompressible
            "SAMPLE_ID": pa.array(range(n), pa.int64()),
            "WIDTH": pa.array([512.0] * n),
            "HEIGHT": pa.array([384.0] * n),
        }
    )
    pq.write_table(table, path, row_group_size=n, compression="snappy")  # one row group: worst case
    return path


def _tsv(path: Path, n: int) -> Path:
    rng = random.Random(n)
    captions = [_caption(rng) for _ in range(97)]
    path.write_text(
        "".join(f"http://img.example.com/{i * 7919:x}/{i}.jpg\t{captions[i % 97]}\n" for i in range(n))
    )
    return path


def _sqlite(path: Path, n: int) -> Path:
    rng = random.Random(n)
    titles = [_caption(rng).replace(" ", "+") for _ in range(97)]
    con = sqlite3.connect(path)
    con.execute(f"CREATE TABLE yfcc100m_dataset ({', '.join(f'{c} TEXT' for c in YFCC_FIELDS)})")
    base = {c: "x" for c in YFCC_FIELDS} | {"marker": "0", "longitude": "2.3", "latitude": "48.8"}
    rows = (
        tuple(
            {**base, "photoid": str(10**9 + i), "title": titles[i % 97], "downloadurl": f"http://f/{i}.jpg"}[
                c
            ]
            for c in YFCC_FIELDS
        )
        for i in range(n)
    )
    con.executemany(f"INSERT INTO yfcc100m_dataset VALUES ({', '.join('?' for _ in YFCC_FIELDS)})", rows)
    con.commit()
    con.close()
    return path


# source -> (file maker, file name, rows of the 1x file: ~5 MB of parquet, fewer rows where Python
# per-row work would make the 10x read slow)
FORMATS = {
    "laion2b": (_parquet, "part-0.parquet", 10_000),
    "cc12m": (_tsv, "cc12m.tsv", 20_000),
    "yfcc15m": (_sqlite, "yfcc100m_dataset.sql", 2_000),
}


def _check(tmp_path: Path, name: str, factor: int) -> None:
    make, fname, base = FORMATS[name]
    small = make(tmp_path / f"1x-{fname}", base)
    big = make(tmp_path / f"{factor}x-{fname}", base * factor)
    got = _probe(name, small, big, batch_rows=1024)
    assert (got["rows_1x"], got["rows_10x"]) == (base, base * factor)
    assert got["growth_10x"] <= got["growth_1x"] + SLACK_MB, (name, got, big.stat().st_size / 2**20)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_peak_rss_flat_for_10x_file(tmp_path: Path, name: str) -> None:
    _check(tmp_path, name, 10)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_peak_rss_flat_for_100x_file(tmp_path: Path, name: str) -> None:
    _check(tmp_path, name, 100)

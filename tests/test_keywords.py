"""RS keyword filter: the 44 patterns, the matching rules, and the partition stage (resume, stats, schema)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rs5m.config import KeywordConfig
from rs5m.fsio import PartitionStats
from rs5m.keywords import (
    DEFAULT_PATTERNS,
    KEYWORDS_FIELD,
    KeywordMatcher,
    filter_partition,
    filter_table,
)
from rs5m.schema import SAMPLE_SCHEMA


@pytest.fixture(scope="module")
def matcher() -> KeywordMatcher:
    return KeywordMatcher()


def hits_of(m: KeywordMatcher, captions: list[str | None]) -> list[list[str]]:
    return m.hits(pa.array(captions, pa.string())).to_pylist()


def test_default_patterns_are_the_44_of_the_paper() -> None:
    assert len(DEFAULT_PATTERNS) == 44 == len(set(DEFAULT_PATTERNS))
    assert DEFAULT_PATTERNS[0] == "remote sensing" and DEFAULT_PATTERNS[26] == "space surveillance"
    assert DEFAULT_PATTERNS[27] == "Google Earth" and DEFAULT_PATTERNS[41] == "Geographic Information System"
    assert DEFAULT_PATTERNS[42:] == ("sentinel 1", "sentinel 2")
    assert {"space-borne photo", "spaceborne imag", "Sentinel-1", "Planet Dove", "NAIP"} <= set(
        DEFAULT_PATTERNS
    )
    # every default pattern matches its own text, and only itself on its own text
    m = KeywordMatcher()
    own = hits_of(m, [f"x {p}" for p in DEFAULT_PATTERNS])
    assert own == [[p] for p in DEFAULT_PATTERNS]


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("AERIAL VIEW of Paris", ["aerial view"]),
        ("google earth screenshot", ["Google Earth"]),
        ("Satellite Imagery", ["satellite imag"]),
        ("satellite images of a port", ["satellite imag"]),  # stems are prefixes
        ("Earth Observation satellites", ["earth observ"]),
        ("Earth observatory", ["earth observ"]),
        ("a space-borne photo", ["space-borne photo"]),
        ("a spaceborne photo", ["spaceborne photo"]),
        ("a space borne photo", []),  # not one of the §3 variants
        ("Sentinel-2 tile", ["Sentinel-2"]),
        ("sentinel 2 tile", ["sentinel 2"]),
        ("Sentinel\t 2 tile", ["sentinel 2"]),  # a space matches a whitespace run
        ("Sentinel\u20132 tile", ["Sentinel-2"]),  # en dash counts as a hyphen
        ("Sentinel2 tile", []),  # no separator: no default pattern
        ("aerial\u00a0view", ["aerial view"]),  # no-break space
        ("aerial-view", []),  # a hyphen does not stand in for a space
        ("aerospace imagery", []),  # word start
        ("geospace view", []),
        ("(aerial view)", ["aerial view"]),
        ("#aerial view", ["aerial view"]),
        ("#aerialview", []),
        ("_aerial view", ["aerial view"]),
        ("3aerial view", []),  # a digit is part of the word
        ("Luftbild: aerial view", ["aerial view"]),
        ("ÉSatellite imagery", []),  # a letter is a letter in any script
        ("e\u0301space imagery", []),  # ... and so is a combining mark
        ("Хspace imagery", []),
        ("航拍aerial view", ["aerial view"]),  # CJK scripts do not separate words with spaces
        ("Naipaul's books", ["NAIP"]),  # prefix semantics, documented false positive
        ("\u017fatellite imagery", []),  # long s folds to s in Unicode, not here: ASCII-only case
        ("", []),
    ],
)
def test_matching_rules(matcher: KeywordMatcher, caption: str, expected: list[str]) -> None:
    assert hits_of(matcher, [caption]) == [expected]
    assert matcher.mask(pa.array([caption])).to_pylist() == [bool(expected)]


def test_word_start_off_is_plain_substring() -> None:
    m = KeywordMatcher(word_start=False)
    assert hits_of(m, ["aerospace imagery", "ÉSatellite imagery"]) == [["space imag"], ["satellite imag"]]


def test_nulls_empty_and_chunked(matcher: KeywordMatcher) -> None:
    arr = pa.chunked_array([pa.array([None, "aerial view"]), pa.array(["", None, "Landsat 8"])])
    assert matcher.mask(arr).to_pylist() == [False, True, False, False, True]
    assert matcher.hits(arr).to_pylist() == [[], ["aerial view"], [], [], ["Landsat"]]
    assert matcher.mask(pa.array([], pa.string())).to_pylist() == []
    assert matcher.mask(pa.array([None, None], pa.null())).to_pylist() == [False, False]
    assert matcher.mask(pa.array(["maxar", "x"]).dictionary_encode()).to_pylist() == [True, False]
    with pytest.raises(TypeError):
        matcher.mask(pa.array([1, 2]))


def test_counts_with_several_hits_per_caption(matcher: KeywordMatcher) -> None:
    caps = [
        "Aerial view and satellite imagery, aerial view again (USGS / Landsat)",
        "aerial satellite imagery",
        "nothing here",
        "Sentinel-2 sentinel 2",
    ]
    counts = matcher.count(pa.array(caps))
    assert set(counts) == set(DEFAULT_PATTERNS)
    nonzero = {k: v for k, v in counts.items() if v}
    assert nonzero == {
        "aerial view": 1,  # counted once per caption
        "satellite imag": 2,
        "aerial satellite": 1,
        "USGS": 1,
        "Landsat": 1,
        "Sentinel-2": 1,
        "sentinel 2": 1,
    }


def test_very_long_caption(matcher: KeywordMatcher) -> None:
    filler = " ".join(["a photo of a dog in the aerospace museum"] * 400)  # ~3,600 words
    caps = [filler, filler + " satellite view", "Maxar " + filler]
    assert matcher.hits(pa.array(caps)).to_pylist() == [[], ["satellite view"], ["Maxar"]]


def test_config_and_validation() -> None:
    m = KeywordMatcher.from_config(KeywordConfig(extra_patterns=["sentinel2", " drone  shot "]))
    assert len(m.patterns) == 46 and m.patterns[-1] == "drone shot"
    assert hits_of(m, ["Sentinel2 data", "drone\nshot"]) == [["sentinel2"], ["drone shot"]]
    only = KeywordMatcher.from_config(KeywordConfig(patterns=["a.b (c)"], word_start=False))
    assert hits_of(only, ["xa.b (c)", "aXb (c)"]) == [["a.b (c)"], []]  # literal, not regex
    for bad in ([], [""], ["  "], ["-x"], ["x\x00"], ["USGS", "usgs"]):
        with pytest.raises(ValueError):
            KeywordMatcher(bad)
    with pytest.raises(ValueError):
        KeywordMatcher.from_config(KeywordConfig(extra_patterns=["Landsat"]))


def _sample_table(captions: list[str]) -> pa.Table:
    n = len(captions)
    return pa.table(
        {
            "uid": [f"laion2b-{i:016x}" for i in range(n)],
            "source": ["laion2b"] * n,
            "url": [f"https://example.com/{i}.jpg" for i in range(n)],
            "caption": captions,
            "width": [64] * n,
            "height": [48] * n,
            "extras": [None] * n,
        },
        schema=SAMPLE_SCHEMA,
    )


def test_filter_table(matcher: KeywordMatcher) -> None:
    kept, counts = filter_table(_sample_table(["a dog", "aerial view of a farm", "USGS map"]), matcher)
    assert kept.column("uid").to_pylist() == ["laion2b-0000000000000001", "laion2b-0000000000000002"]
    assert kept.column("keywords").to_pylist() == [["aerial view"], ["USGS"]]
    assert counts["aerial view"] == 1 and sum(counts.values()) == 2


def test_filter_partition_round_trip_and_resume(tmp_path: Path) -> None:
    caps = ["cat", "Aerial View of a farm", "aerospace imagery", "satellite map and Landsat"] * 50_000
    src = tmp_path / "in.parquet"
    pq.write_table(_sample_table(caps), src, row_group_size=60_000)
    out, stats_path = tmp_path / "out" / "00000.parquet", tmp_path / "_stats" / "00000.json"
    stats = filter_partition(
        src, out, stats_path, cfg=KeywordConfig(), source="laion2b", partition="00000", batch_size=70_000,
        flush_rows=30_000,
    )  # fmt: skip
    assert (stats.n_in, stats.n_out, stats.removed) == (200_000, 100_000, {"no_keyword_match": 100_000})
    hits = stats.extra["keyword_hits"]
    assert (hits["aerial view"], hits["satellite map"], hits["Landsat"], hits["space imag"]) == (
        50_000,
    ) * 3 + (0,)
    assert PartitionStats.read(stats_path) == stats
    assert json.loads(stats_path.read_text())["stage"] == "keyword"
    table = pq.read_table(out)
    assert table.schema == SAMPLE_SCHEMA.append(KEYWORDS_FIELD)
    assert table.num_rows == 100_000 and table.column("keywords")[1].as_py() == ["satellite map", "Landsat"]
    assert table.column("uid")[0].as_py() == "laion2b-0000000000000001"  # input order kept
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp files left

    before = (out.stat().st_mtime_ns, stats_path.stat().st_mtime_ns)
    again = filter_partition(src, out, stats_path, cfg=KeywordConfig(), source="laion2b", partition="00000")
    assert again == stats
    assert (out.stat().st_mtime_ns, stats_path.stat().st_mtime_ns) == before


def test_filter_partition_nothing_matches(tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pq.write_table(_sample_table(["a cat", "a dog"]), src)
    out, stats_path = tmp_path / "out.parquet", tmp_path / "s.json"
    stats = filter_partition(src, out, stats_path, cfg=KeywordConfig(), source="cc3m", partition="7")
    assert (stats.n_in, stats.n_out, stats.removed["no_keyword_match"]) == (2, 0, 2)
    table = pq.read_table(out)
    assert table.num_rows == 0 and table.schema == SAMPLE_SCHEMA.append(KEYWORDS_FIELD)


def test_filter_partition_redoes_a_corrupt_marker(tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pq.write_table(_sample_table(["Maxar tile"]), src)
    stats_path = tmp_path / "s.json"
    stats_path.write_text("{not json")
    stats = filter_partition(
        src, tmp_path / "o.parquet", stats_path, cfg=KeywordConfig(), source="cc3m", partition="0"
    )
    assert stats.n_out == 1 and PartitionStats.read(stats_path) == stats

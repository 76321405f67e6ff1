"""RS keyword filter: the 44 patterns, the matching rules, and the partition stage (resume, stats, schema)."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rs5m.config import KeywordConfig
from rs5m.core.schema import SAMPLE_SCHEMA
from rs5m.core.stats import PartitionStats
from rs5m.pipeline.keywords import matcher as keywords
from rs5m.pipeline.keywords import prefilter as keywords_prefilter
from rs5m.pipeline.keywords.matcher import (
    _HYPHEN,
    _SPACE,
    DEFAULT_PATTERNS,
    KEYWORDS_FIELD,
    KeywordMatcher,
    _matches,
    filter_table,
)
from rs5m.pipeline.keywords.stage import filter_partition

needs_prefilter = pytest.mark.skipif(not keywords_prefilter.AVAILABLE, reason="ahocorasick_rs not installed")


@pytest.fixture(scope="module", params=[False, True], ids=["re2", "prefilter"])
def matcher(request: pytest.FixtureRequest) -> KeywordMatcher:
    """Every rule test runs on both paths: RE2 alone and prefilter + RE2 on the candidate rows."""
    if request.param and not keywords_prefilter.AVAILABLE:
        pytest.skip("ahocorasick_rs not installed")
    return KeywordMatcher(prefilter=request.param)


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


# --- the literal prefilter: same results as RE2 alone, on anything -----------------------------------

SPACES = [" ", "  ", "\t", "\n", "\v", "\f", "\r", " \t ", "\u00a0", "\u1680", "\u2000", "\u2007", "\u200a",
          "\u202f", "\u205f", "\u3000", "\u00a0 \u3000"]  # fmt: skip
HYPHENS = ["-", "\u2010", "\u2011", "\u2012", "\u2013"]
NOT_SEPARATORS = ["", "_", "\u200b", "\u2014", "\u2212", "\x00", "\u0085", "\x1c", "\u180e", "--", "- "]
# Texts where one pattern's match overlaps another's: a non-overlapping search reports only the first.
OVERLAPPING = ["aerial satellite imag", "google earth observ", "space-borne photo", "Sentinel-2 sentinel 2"]
BEFORE = ["", " ", "a", "É", "e\u0301", "航", "(", "#", "3", "\x00", "Х", "ſ", "\u00a0", "\n"]


def _variant(rng: random.Random, pattern: str) -> str:
    """A spelling of ``pattern``: random case and separators, sometimes broken (a near miss)."""
    out = []
    for ch in pattern:
        if ch == " ":
            out.append(rng.choice(SPACES if rng.random() < 0.9 else NOT_SEPARATORS + HYPHENS))
        elif ch == "-":
            out.append(rng.choice(HYPHENS if rng.random() < 0.9 else NOT_SEPARATORS + SPACES))
        elif ch.isascii() and ch.isalpha() and rng.random() < 0.5:
            out.append(ch.swapcase())
        elif ch in "sk" and rng.random() < 0.02:
            out.append({"s": "ſ", "k": "\u212a"}[ch])  # Unicode case folds, not ours
        else:
            out.append(ch)
    text = "".join(out)
    if rng.random() < 0.1:
        text = text[: rng.randrange(len(text))]
    return rng.choice(BEFORE) + text


def adversarial_captions(n: int, seed: int = 0) -> list[str | None]:
    """Captions of pattern spellings, separators, filler, nulls; some rows split a pattern across rows."""
    rng = random.Random(seed)
    filler = ["a", "photo", "of", "the", "aerospace", "space", "satellite dish", "Naipaul", "航拍", "é", "🛰️"]
    rows: list[str | None] = []
    while len(rows) < n:
        r = rng.random()
        if r < 0.03:
            rows.append(None)
        elif r < 0.15:  # a pattern split over two rows: only the concatenated buffer holds it
            text = _variant(rng, rng.choice([*DEFAULT_PATTERNS, *OVERLAPPING]))
            cut = rng.randrange(len(text) + 1)
            rows += [rng.choice(filler) + " " + text[:cut], text[cut:] + rng.choice(["", " x"])]
        else:
            parts = [_variant(rng, rng.choice(DEFAULT_PATTERNS)) for _ in range(rng.randrange(3))]
            parts += rng.choices(filler + SPACES + HYPHENS + NOT_SEPARATORS, k=rng.randrange(6))
            rng.shuffle(parts)
            rows.append(rng.choice(["", " ", "\u3000"]).join(parts))
    return rows[:n]


def _chunked(arr: pa.Array, rng: random.Random) -> pa.ChunkedArray:
    cuts = sorted(rng.sample(range(1, len(arr)), 5))
    return pa.chunked_array(
        [arr.slice(lo, hi - lo) for lo, hi in zip([0, *cuts], [*cuts, len(arr)], strict=True)]
    )


@needs_prefilter
@pytest.mark.parametrize("word_start", [True, False])
def test_prefilter_gives_the_re2_results(word_start: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keywords, "ALL_RE2_SHARE", 1.0)  # always take the prefilter path ...
    monkeypatch.setattr(keywords_prefilter, "DENSE_BYTES", 0)  # ... and search every window
    caps = adversarial_captions(4000, seed=int(word_start))
    fast = KeywordMatcher(word_start=word_start, prefilter=True)
    slow = KeywordMatcher(word_start=word_start, prefilter=False)
    arr = pa.array(caps, pa.string())
    want = slow.mask(arr)
    assert 0.2 < pc.mean(want).as_py() < 0.8  # both kinds of row are well represented
    assert fast.mask(arr).equals(want)
    assert fast.hits(arr).equals(slow.hits(arr))
    # hit_matrix against the plain definition: each pattern's own guarded regex on every row
    plain = np.column_stack([_matches(arr, rx) for rx in slow._regexes])
    assert (fast.hit_matrix(arr) == plain).all() and (slow.hit_matrix(arr) == plain).all()
    # every exact match is a candidate, even for plain substring search, and so is each pattern's
    prefilter = fast._prefilter
    assert prefilter is not None
    substring = KeywordMatcher(word_start=False, prefilter=False)
    exact = np.flatnonzero(substring.mask(arr).to_numpy(zero_copy_only=False))
    assert np.isin(exact, prefilter.candidates(arr)).all()
    for core, rows in zip(substring._cores, prefilter.pattern_rows(arr), strict=True):
        assert np.isin(np.flatnonzero(_matches(arr, core)), rows).all(), core
    rng = random.Random(1)
    for variant in [
        arr.cast(pa.large_string()),
        arr.slice(7, 3000),
        arr.cast(pa.large_string()).slice(1000),
        _chunked(arr, rng),
        pa.chunked_array([arr.slice(0, 0), arr.slice(0, 5), arr.slice(5, 0), arr.slice(5)]),
    ]:
        assert fast.mask(variant).equals(slow.mask(variant))
    monkeypatch.setattr(keywords_prefilter, "WINDOW_BYTES", 64)  # many windows, rows longer than one
    assert fast.mask(arr).equals(want)
    assert fast.mask(arr.slice(3, 500)).equals(slow.mask(arr.slice(3, 500)))
    assert arr.nbytes < keywords.SPLIT_GUARD_MAX_BYTES  # so far the split guard; now the plain one
    monkeypatch.setattr(keywords, "SPLIT_GUARD_MAX_BYTES", 0)
    assert fast.mask(arr).equals(want) and (fast.hit_matrix(arr) == plain).all()


@needs_prefilter
@pytest.mark.parametrize("all_re2_share", [0.25, 1.0])
def test_prefilter_edge_arrays(all_re2_share: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keywords, "ALL_RE2_SHARE", all_re2_share)
    fast, slow = KeywordMatcher(prefilter=True), KeywordMatcher(prefilter=False)
    for arr in [
        pa.array([], pa.string()),
        pa.array([None, None], pa.string()),
        pa.array(["", ""], pa.large_string()),
        pa.array(["aerial", " view", "USG", "S"]),  # hits only in the concatenated buffer
        pa.array(["x"] * 99 + ["aerial\u00a0view"]),
        pa.array(["aerial view"] * 10),  # mostly candidates: one RE2 pass
        pa.array(["Sentinel\u20132", "sentinel\u2014 2", "space\u2011borne view"]),
        # the search reports "google earth" across the two rows; the hit in row 2 starts inside it
        pa.array(["x", "google", " earth observation", "y"]),
        pa.array(["aerial", " satellite imagery", "y"]),
    ]:
        assert fast.mask(arr).equals(slow.mask(arr)), arr
        assert fast.hits(arr).equals(slow.hits(arr)), arr
    # a reported match over three rows hides a hit in the middle one
    rows = pa.array(["ab", " cd ", "ef", "x"])
    assert KeywordMatcher(["ab cd ef", "cd"], prefilter=True).mask(rows).to_pylist() == [0, 1, 0, 0]


def test_separator_markers_cover_the_separator_classes() -> None:
    """The prefilter's proof needs every separator character but " " and "-" among its markers."""
    cps = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    chars = pa.array([chr(c) for c in cps], pa.string())
    for cls, canonical in [(_SPACE, " "), (_HYPHEN, "-")]:
        accepted = pc.filter(chars, pc.match_substring_regex(chars, f"^(?:{cls})$")).to_pylist()
        assert canonical in accepted and len(accepted) > 4
        missing = set(accepted) - set(keywords_prefilter.SEPARATOR_MARKERS) - {canonical}
        assert not missing, sorted(map(hex, map(ord, missing)))
    assert "  " in keywords_prefilter.SEPARATOR_MARKERS  # a run of plain spaces


@needs_prefilter
def test_prefilter_pickles_and_config_patterns() -> None:
    m = KeywordMatcher.from_config(KeywordConfig(extra_patterns=["café  crème", "x-ray"]))
    again = pickle.loads(pickle.dumps(m))
    assert again._prefilter is not None and repr(again) == repr(m)
    caps = pa.array(["CAFÉ crème", "café\u00a0crème", "Café crème", "X\u2010Ray", "xray", "Maxar"])
    assert again.hits(caps).to_pylist() == [[], ["café crème"], ["café crème"], ["x-ray"], [], ["Maxar"]]
    assert again.mask(caps).equals(KeywordMatcher(m.patterns, prefilter=False).mask(caps))


def test_re2_fallback_without_ahocorasick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keywords_prefilter, "ahocorasick_rs", None)
    monkeypatch.setattr(keywords_prefilter, "AVAILABLE", False)
    m = KeywordMatcher()
    assert m._prefilter is None and "prefilter=False" in repr(m)
    assert m.mask(pa.array(["aerial view", "x", None])).to_pylist() == [True, False, False]
    with pytest.raises(ImportError):
        KeywordMatcher(prefilter=True)

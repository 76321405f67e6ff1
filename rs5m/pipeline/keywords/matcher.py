"""RS keyword filter: the 44 RS5M caption patterns and a vectorised matcher over Arrow string arrays.

Matching rules (the paper gives only the pattern list, so these are our decisions):

- **Literal stems, prefix match.** A pattern is literal text, never a regex; it matches wherever the
  caption contains it, so ``satellite imag`` matches "satellite imagery" and "satellite images".
  No word end is required; this is why ``NAIP`` also hits "Naipaul" and ``MODIS`` hits "modish".
- **Case.** ASCII letters match case-insensitively; other characters match exactly. Unicode case
  folding is deliberately not used (the long s "ſ" does not match ``s``).
- **Separators.** A space in a pattern matches a run of one or more whitespace characters (ASCII
  whitespace or Unicode ``Zs``: no-break space, thin space, ideographic space, ...). A hyphen matches
  one hyphen or dash: ``-`` or U+2010..U+2013 (hyphen, non-breaking hyphen, figure dash, en dash).
  A separator never matches nothing, and space and hyphen do not stand in for each other: the §3
  variants are separate patterns with separate counts (``Sentinel-2`` vs ``sentinel 2``,
  ``spaceborne imag`` vs ``space-borne imag``), and "sentinel2" or "#aerialview" match no default
  pattern (add ``sentinel2`` to ``KeywordConfig.extra_patterns`` if wanted).
- **Word start** (``word_start=True``, the default). A match must begin the caption or follow a
  character that is not a letter, digit or combining mark of any script (``\\pL \\pN \\pM``), so
  "aerospace imagery" is not a hit for ``space imag``, nor "ÉSatellite imagery" for ``satellite
  imag``, while "(aerial view", "#aerial view", "_aerial view" and "Luftbild: aerial view" are hits.
  Exception: Han, Hiragana and Katakana letters count as boundaries because those scripts do not put
  spaces between words ("航拍aerial view" is a hit). ``word_start=False`` gives plain substring search.
- Null captions never match.

Speed: a multi-literal prefilter (``rs5m.pipeline.keywords.prefilter``: SIMD Aho-Corasick over the caption
bytes, ~2 MiB at a time) picks the few rows that could match, and the exact RE2 regex
(``pyarrow.compute.match_substring_regex``) decides on those rows only, so results are those of RE2
alone; without ``ahocorasick_rs`` installed the mask is one RE2 pass over each batch. Which patterns hit
is worked out only for the rare matching rows. See docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rs5m.config import KeywordConfig
from rs5m.config.build import DEFAULT_PATTERNS
from rs5m.pipeline.keywords import prefilter as keywords_prefilter

KEYWORDS_FIELD = pa.field("keywords", pa.list_(pa.string()), nullable=False)
ALL_RE2_SHARE = 0.25  # above this share of candidate rows, one RE2 pass beats take + RE2 on them
SPLIT_GUARD_MAX_BYTES = 256 << 10  # RE2 reads ~350 KB in the time the guard takes to compile

_SPACE = r"[\t\n\v\f\r\p{Zs}]+"
_HYPHEN = r"[\x{2d}\x{2010}-\x{2013}]"
_WORD_START = r"(?:^|[^\pL\pN\pM]|[\p{Han}\p{Hiragana}\p{Katakana}])"
# Cheap-to-compile parts of the guard's cases: ASCII other than letters and digits is always a word
# boundary, and any other boundary character is non-ASCII. See KeywordMatcher._exact.
_ASCII_BOUNDARY = r"(?:^|[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f])"
_NON_ASCII = r"[^\x00-\x7f]"


def normalize_pattern(pattern: str) -> str:
    """Return ``pattern`` with whitespace runs collapsed to one space and the ends stripped.

    Raises ``ValueError`` for an empty pattern, control characters, or a pattern that starts or ends
    with a separator (it would match differently from what it reads like).
    """
    if not isinstance(pattern, str):
        raise ValueError(f"keyword pattern must be a string, got {pattern!r}")
    norm = " ".join(pattern.split())
    if not norm:
        raise ValueError(f"empty keyword pattern {pattern!r}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in norm):
        raise ValueError(f"control character in keyword pattern {pattern!r}")
    if norm[0] == "-" or norm[-1] == "-":
        raise ValueError(f"keyword pattern {pattern!r} starts or ends with a hyphen")
    return norm


def pattern_regex(pattern: str) -> str:
    """The RE2 expression for one normalised pattern, without the word-start guard."""
    out = []
    for ch in pattern:
        if ch == " ":
            out.append(_SPACE)
        elif ch == "-":
            out.append(_HYPHEN)
        elif ch.isascii() and ch.isalpha():
            out.append(f"[{ch.lower()}{ch.upper()}]")
        elif ch.isascii() and ch.isdigit():
            out.append(ch)
        else:  # every other character literally, whatever RE2 would make of it
            out.append(f"\\x{{{ord(ch):x}}}")
    return "".join(out)


class KeywordMatcher:
    """Match captions against literal stem patterns (rules in the module docstring).

    Patterns are normalised and kept in the given order; they are the names used in ``hits`` and
    ``count``. Duplicates (ignoring case) raise ``ValueError``. ``prefilter``: ``None`` uses the
    literal prefilter when ``ahocorasick_rs`` is installed, ``False`` never (RE2 alone), ``True``
    always (``ImportError`` without it); results are the same either way.
    """

    def __init__(
        self,
        patterns: Sequence[str] = DEFAULT_PATTERNS,
        word_start: bool = True,
        prefilter: bool | None = None,
    ) -> None:
        if isinstance(patterns, str):
            raise ValueError("patterns must be a sequence of strings, not one string")
        norm = [normalize_pattern(p) for p in patterns]
        if not norm:
            raise ValueError("at least one keyword pattern is needed")
        seen: dict[str, str] = {}
        for p in norm:
            key = p.lower()
            if key in seen:
                raise ValueError(f"duplicate keyword pattern {p!r} (same as {seen[key]!r})")
            seen[key] = p
        self.patterns: tuple[str, ...] = tuple(norm)
        self.word_start = word_start
        prefix = _WORD_START if word_start else ""
        self._cores = [pattern_regex(p) for p in norm]
        self._regexes = [prefix + core for core in self._cores]
        any_core = "(?:" + "|".join(self._cores) + ")"
        self._combined = prefix + any_core
        self._split_guard = (_ASCII_BOUNDARY + any_core, _NON_ASCII + any_core) if word_start else None
        self._names = pa.array(self.patterns, pa.string())
        use = keywords_prefilter.AVAILABLE if prefilter is None else prefilter
        self._prefilter = keywords_prefilter.LiteralPrefilter(self.patterns) if use else None

    @classmethod
    def from_config(cls, cfg: KeywordConfig) -> KeywordMatcher:
        """Build from config: ``patterns`` (``None``: ``DEFAULT_PATTERNS``), then ``extra_patterns``."""
        base = DEFAULT_PATTERNS if cfg.patterns is None else tuple(cfg.patterns)
        return cls([*base, *cfg.extra_patterns], word_start=cfg.word_start)

    def __repr__(self) -> str:
        return (
            f"KeywordMatcher({len(self.patterns)} patterns, word_start={self.word_start}, "
            f"prefilter={self._prefilter is not None})"
        )

    def mask(self, arr: pa.Array | pa.ChunkedArray) -> pa.BooleanArray:
        """True where the caption matches any pattern; null captions give False (no nulls in the result).

        With the prefilter: one literal scan of each chunk, then RE2 on the candidate rows only.
        """
        arr = _check_strings(arr)
        if len(arr) == 0:
            return pa.array([], pa.bool_())
        if self._prefilter is None:
            res = pc.fill_null(pc.match_substring_regex(arr, self._combined), False)
            return res.combine_chunks() if isinstance(res, pa.ChunkedArray) else res
        chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
        return pa.array(np.concatenate([self._mask_prefiltered(c) for c in chunks]), pa.bool_())

    def _mask_prefiltered(self, arr: pa.Array) -> np.ndarray:
        assert self._prefilter is not None
        rows = self._prefilter.candidates(arr)
        if rows.size > len(arr) * ALL_RE2_SHARE:
            return _matches(arr, self._combined)
        out = np.zeros(len(arr), dtype=bool)
        if rows.size:
            out[rows] = self._exact(_take(arr, rows))
        return out

    def _exact(self, arr: pa.Array) -> np.ndarray:
        """``_matches(arr, self._combined)``. For a few rows, where compiling the guard's Unicode
        classes (~0.5 ms per call) costs more than a second pass, those run only on the rows where a
        pattern follows a non-ASCII character."""
        if self._split_guard is None or arr.nbytes > SPLIT_GUARD_MAX_BYTES:
            return _matches(arr, self._combined)
        after_ascii, after_non_ascii = self._split_guard
        out = _matches(arr, after_ascii)
        rest = np.flatnonzero(~out)
        maybe = rest[_matches(_take(arr, rest), after_non_ascii)]
        out[maybe] = _matches(_take(arr, maybe), self._combined)
        return out

    def hit_matrix(self, arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Boolean ``(len(arr), len(patterns))`` matrix: which patterns each caption contains.

        Meant for the few rows ``mask`` kept. Each pattern regex runs only on the rows the prefilter
        gives for it (all rows without one) and without the word-start guard, which costs ~1 ms to
        compile where a bare pattern costs ~15 µs. The guard is then checked with one regex for the
        rows that contain one pattern, and per pattern only for rows that contain several.
        """
        arr = _one_array(arr)
        out = np.zeros((len(arr), len(self.patterns)), dtype=bool)
        if len(arr) == 0 or arr.null_count == len(arr):
            return out
        every = np.arange(len(arr))
        rows_for = self._prefilter.pattern_rows(arr) if self._prefilter else [every] * len(out.T)
        for j, (core, rows) in enumerate(zip(self._cores, rows_for, strict=True)):
            if rows.size:
                out[rows[_matches(_take(arr, rows), core)], j] = True
        if not self.word_start:
            return out
        n_hit = out.sum(axis=1)
        # With one pattern present, the guarded regex of all patterns is that pattern's.
        one = np.flatnonzero(n_hit == 1)
        out[one[~self._exact(_take(arr, one))]] = False
        several = np.flatnonzero(n_hit > 1)
        for j in np.flatnonzero(out[several].any(axis=0)):
            rows = several[out[several, j]]
            out[rows[~_matches(_take(arr, rows), self._regexes[j])], j] = False
        return out

    def hits(self, arr: pa.Array | pa.ChunkedArray) -> pa.ListArray:
        """Per caption, the patterns it matches (pattern order); an empty list when none or null."""
        arr = _check_strings(arr)
        rows = np.flatnonzero(self.mask(arr).to_numpy(zero_copy_only=False))
        full = np.zeros((len(arr), len(self.patterns)), dtype=bool)
        full[rows] = self.hit_matrix(arr.take(pa.array(rows, pa.int64())))
        return self.lists(full)

    def count(self, arr: pa.Array | pa.ChunkedArray) -> dict[str, int]:
        """Per-pattern number of matching captions (a caption hitting several counts for each)."""
        arr = _check_strings(arr)
        rows = np.flatnonzero(self.mask(arr).to_numpy(zero_copy_only=False))
        sums = self.hit_matrix(arr.take(pa.array(rows, pa.int64()))).sum(axis=0)
        return {p: int(n) for p, n in zip(self.patterns, sums, strict=True)}

    def lists(self, matrix: np.ndarray) -> pa.ListArray:
        """Turn a ``hit_matrix`` into a ``list<string>`` array of pattern names, row by row."""
        offsets = np.zeros(len(matrix) + 1, dtype=np.int32)
        np.cumsum(matrix.sum(axis=1), out=offsets[1:])
        cols = np.nonzero(matrix)[1]  # row-major, so grouped by row in pattern order
        return pa.ListArray.from_arrays(pa.array(offsets), self._names.take(pa.array(cols, pa.int64())))


def _check_strings(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Validate a caption column; decode dictionaries; a null-typed column becomes null strings."""
    if pa.types.is_dictionary(arr.type):
        arr = pc.cast(arr, arr.type.value_type)
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.string())
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise TypeError(f"captions must be an Arrow string array, got {arr.type}")
    return arr


def _matches(arr: pa.Array, regex: str) -> np.ndarray:
    if len(arr) == 0:
        return np.zeros(0, dtype=bool)
    return pc.fill_null(pc.match_substring_regex(arr, regex), False).to_numpy(zero_copy_only=False)


def _take(arr: pa.Array, rows: np.ndarray) -> pa.Array:
    return arr.take(pa.array(rows, pa.int64()))


def _one_array(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    arr = _check_strings(arr)
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


def filter_table(
    table: pa.Table, matcher: KeywordMatcher, caption_col: str = "caption"
) -> tuple[pa.Table, dict[str, int]]:
    """Keep the rows whose caption matches; add ``keywords`` (the patterns hit, in pattern order).

    Returns ``(kept, hit_counts)``; ``hit_counts`` has every pattern, zeros included.
    """
    kept = table.filter(matcher.mask(table.column(caption_col)))
    matrix = matcher.hit_matrix(kept.column(caption_col))
    kept = kept.append_column(KEYWORDS_FIELD, matcher.lists(matrix))
    return kept, {p: int(n) for p, n in zip(matcher.patterns, matrix.sum(axis=0), strict=True)}

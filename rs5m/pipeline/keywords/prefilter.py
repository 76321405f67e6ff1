"""Multi-literal prefilter for the keyword matcher: the rows of a caption array that could match at all.

``LiteralPrefilter(patterns).candidates(arr)`` returns sorted row indices: a superset of the rows in
which any of the (normalised) patterns matches under the rules of ``rs5m.pipeline.keywords.matcher``, with
or without
the word-start guard. The matcher then runs its exact RE2 regex on these rows only, so its results do
not depend on the prefilter, only its speed does.

How: window by window (~2 MiB of whole rows), the caption bytes are ASCII-lowercased
(``pyarrow.compute.ascii_lower``, ~17 GB/s) and the window's values buffer is searched as one string
with ``ahocorasick_rs`` (Rust ``aho-corasick``, whose SIMD Teddy searcher runs at ~8 GB/s for the 44
default literals) for two sets of literals:

1. the *canonical* literal of every pattern: lowercased, each separator written as one ``" "`` or
   ``"-"``;
2. the *separator markers*: every separator character other than ``" "`` and ``"-"`` (ASCII whitespace
   controls, Unicode ``Zs``, U+2010..U+2013) and ``"  "``.

Why that is a superset: take a caption with an exact match. If each separator in the match is one
``" "`` or ``"-"``, the lowered match text is the canonical literal (case is ASCII-only on both sides).
Otherwise one separator is a whitespace run other than one ``" "`` (so it holds a non-space separator
character or two spaces) or a Unicode hyphen, and the match text contains a marker. Either way the
caption contains a literal of one of the sets. A leftmost non-overlapping search reports, for every
occurrence of any of its literals, a match covering that occurrence's first byte (the search resumes
at the end of each match and always reports the leftmost start next). A reported match may run across
row boundaries (a window is searched as one string), so every row it touches is a candidate.

Text where literals are dense (more than one per ``DENSE_BYTES``) is not searched further: every
row from there on is a candidate. ``pattern_rows`` gives candidate rows per pattern, for
``KeywordMatcher.hit_matrix``, by the same argument with an overlapping search of the literals.

Separators and markers must stay in step with ``_SPACE`` and ``_HYPHEN`` in
``rs5m.pipeline.keywords.matcher``; a test
checks every code point those classes accept. ``AVAILABLE`` is false when ``ahocorasick_rs`` is not
installed; the matcher then uses RE2 alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

try:
    import ahocorasick_rs
except ImportError:  # optional speed-up: the matcher falls back to RE2 alone
    ahocorasick_rs = None

AVAILABLE = ahocorasick_rs is not None
WINDOW_BYTES = 2 << 20  # caption bytes lowered and searched at a time ...
FIRST_WINDOW_BYTES = 16 << 10  # ... after a first window this big
DENSE_BYTES = 512  # more than one literal found per this many bytes: stop searching (see candidates)

# Separator characters of the matching rules other than " " and "-", plus "  " for a run of spaces.
SEPARATOR_MARKERS: tuple[str, ...] = (
    "\t", "\n", "\v", "\f", "\r", "  ",
    "\u00a0", "\u1680", *map(chr, range(0x2000, 0x200B)), "\u202f", "\u205f", "\u3000",  # Zs
    "\u2010", "\u2011", "\u2012", "\u2013",  # hyphen, non-breaking hyphen, figure dash, en dash
)  # fmt: skip


def canonical_literal(pattern: str) -> bytes:
    """UTF-8 of a normalised pattern with ASCII letters lowercased (its separators are already " "/"-")."""
    return "".join(ch.lower() if ch.isascii() else ch for ch in pattern).encode()


class LiteralPrefilter:
    """Candidate rows for normalised keyword patterns (contract and proof in the module docstring).

    Raises ``ImportError`` if ``ahocorasick_rs`` is not installed. Thread-safe: the automata are
    immutable. Pickles as its patterns (the automata are rebuilt).
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        if ahocorasick_rs is None:
            raise ImportError("the keyword prefilter needs ahocorasick_rs (pip install ahocorasick-rs)")
        self.patterns = tuple(patterns)
        # In pattern order: the SIMD searcher puts literals into buckets by their order, and for the
        # 44 default patterns this order measured 25% faster than sorted (34 vs 47 ms per 300 MB).
        literals = list(dict.fromkeys(canonical_literal(p) for p in self.patterns))
        markers = [m.encode() for m in SEPARATOR_MARKERS]
        # Three automata, because each is fast only alone: with one-byte markers among them, the
        # SIMD searcher falls back to one-byte fingerprints that common letters defeat (~1 GB/s for
        # literals and markers together); the rare one-byte markers alone, and the multi-byte markers
        # alone, each ran at ~30 GB/s.
        groups = [[m for m in markers if len(m) > 1], [m for m in markers if len(m) == 1]]
        leftmost = ahocorasick_rs.MATCHKIND_LEFTMOST_FIRST  # leftmost kinds use the SIMD searcher
        self._literals = ahocorasick_rs.BytesAhoCorasick(literals, matchkind=leftmost)
        self._markers = [ahocorasick_rs.BytesAhoCorasick(g, matchkind=leftmost) for g in groups]
        # For pattern_rows: every occurrence of every literal, each reported as its pattern.
        self._each_literal = ahocorasick_rs.BytesAhoCorasick(literals)
        self._has_separator = np.array([" " in p or "-" in p for p in self.patterns])

    def __reduce__(self) -> tuple[type[LiteralPrefilter], tuple[tuple[str, ...]]]:
        return LiteralPrefilter, (self.patterns,)

    def candidates(self, arr: pa.Array) -> np.ndarray:
        """Sorted unique ``int64`` row indices of ``arr`` (string or large_string) that may match.

        Null rows may be included (their bytes, if any, are searched like the others). Once a window
        has more than one literal per ``DENSE_BYTES`` bytes, every row from there on is returned
        without searching: each reported literal costs ~0.3 µs in Python, so on such text (every
        caption a hit, runs of double spaces, many en dashes) RE2 alone is faster.
        """
        if len(arr) == 0 or arr.null_count == len(arr):
            return np.zeros(0, np.int64)
        offsets, _ = _offsets_and_data(arr)
        found: list[np.ndarray] = []
        lo, size = 0, FIRST_WINDOW_BYTES
        while lo < len(arr):
            # Windows of whole rows, the first small so that dense text costs little before it is
            # seen; then ~WINDOW_BYTES, whose lowered copy stays in cache for the searches after it
            # (searching a whole 37 MB batch per pass, each would stream it from memory).
            hi = min(len(arr), max(lo + 1, int(np.searchsorted(offsets, offsets[lo] + size))))
            w_offsets, data = _offsets_and_data(pc.ascii_lower(arr.slice(lo, hi - lo)))
            spans = [_spans(ac, data) for ac in [self._literals, *self._markers]]
            n_found = sum(len(sp) for sp in spans)
            if n_found * DENSE_BYTES > offsets[hi] - offsets[lo]:
                found.append(np.arange(lo, len(arr)))
                break
            if n_found:
                found.append(_rows_touched(w_offsets, np.concatenate(spans)) + lo)
            lo, size = hi, WINDOW_BYTES
        # Each window's rows are sorted and unique, and windows follow each other.
        return np.concatenate(found) if found else np.zeros(0, np.int64)

    def pattern_rows(self, arr: pa.Array) -> list[np.ndarray]:
        """Per pattern, sorted row indices that may contain it, word start or not (superset).

        For the few rows ``candidates`` kept: the array is searched whole, reporting every
        occurrence of every literal (no window, no density cut-off, slower per byte).
        """
        empty = np.zeros(0, np.int64)
        if len(arr) == 0 or arr.null_count == len(arr):
            return [empty] * len(self.patterns)
        offsets, data = _offsets_and_data(pc.ascii_lower(arr))
        if data.size == 0:
            return [empty] * len(self.patterns)
        hits = np.array(self._each_literal.find_matches_as_indexes(data, overlapping=True), np.int64)
        hits = hits.reshape(-1, 3)
        # An occurrence lies inside a row; one across rows only adds its first row.
        lit_rows = np.searchsorted(offsets, hits[:, 1] + offsets[0], side="right") - 1
        marked = _rows_touched(offsets, np.concatenate([_spans(ac, data) for ac in self._markers]))
        out = []
        for j, has_sep in enumerate(self._has_separator):
            rows = lit_rows[hits[:, 0] == j]
            out.append(np.union1d(rows, marked) if has_sep else np.unique(rows))
        return out


def _spans(ac: ahocorasick_rs.BytesAhoCorasick, data: np.ndarray) -> np.ndarray:
    """``(n, 2)`` int64 start/end byte offsets (into ``data``) of the matches a leftmost search reports."""
    found = ac.find_matches_as_indexes(data) if data.size else []
    return np.array(found, np.int64).reshape(-1, 3)[:, 1:]


def _rows_touched(offsets: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Sorted unique rows that the ``spans`` (offsets into the bytes from ``offsets[0]``) touch."""
    se = spans + offsets[0]
    first = np.searchsorted(offsets, se[:, 0], side="right") - 1  # the row holding a byte
    last = np.searchsorted(offsets, se[:, 1] - 1, side="right") - 1
    rows = [first]
    for lo, hi in zip(first[first != last], last[first != last], strict=True):
        rows.append(np.arange(lo + 1, hi + 1))  # a match across rows marks each row it touches
    return np.unique(np.concatenate(rows))


def _offsets_and_data(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The ``len(arr) + 1`` value offsets (as int64) and a zero-copy uint8 view of the bytes they span."""
    width = 8 if pa.types.is_large_string(arr.type) else 4
    dtype = np.int64 if width == 8 else np.int32
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype, len(arr) + 1, arr.offset * width).astype(np.int64)
    if data_buf is None:
        return offsets, np.zeros(0, np.uint8)
    return offsets, np.frombuffer(data_buf, np.uint8)[offsets[0] : offsets[-1]]

"""Multi-literal prefilter for the keyword matcher: the rows of a caption array that could match at all.

``LiteralPrefilter(patterns).candidates(arr)`` returns sorted row indices: a superset of the rows in
which any of the (normalised) patterns matches under the rules of ``rs5m.keywords``, with or without
the word-start guard. The matcher then runs its exact RE2 regex on these rows only, so its results do
not depend on the prefilter, only its speed does.

How: window by window (~2 MiB of whole rows), the caption bytes are ASCII-lowercased
(``pyarrow.compute.ascii_lower``, ~17 GB/s) and the window's values buffer is searched as one string
with ``ahocorasick_rs`` (Rust ``aho-corasick``, whose SIMD Teddy searcher runs at ~6 GB/s for the 44
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

Separators and markers must stay in step with ``_SPACE`` and ``_HYPHEN`` in ``rs5m.keywords``; a test
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
FIRST_WINDOW_BYTES = 16 << 10  # ... after a first window this big, and windows growing twofold
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
    immutable. Not picklable (the matcher rebuilds it after unpickling).
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        if ahocorasick_rs is None:
            raise ImportError("the keyword prefilter needs ahocorasick_rs (pip install ahocorasick-rs)")
        leftmost = ahocorasick_rs.MATCHKIND_LEFTMOST_FIRST  # leftmost kinds use the SIMD searcher
        literals = sorted({canonical_literal(p) for p in patterns})
        markers = [m.encode() for m in SEPARATOR_MARKERS]
        single = [m for m in markers if len(m) == 1]
        # Several automata, because each is fast only alone: with one-byte markers in a set, the SIMD
        # searcher falls back to one-byte fingerprints that common letters defeat (~1 GB/s); the
        # multi-byte markers alone run at ~30 GB/s, and one-byte markers by threes use memchr3.
        groups = [literals, [m for m in markers if len(m) > 1]]
        groups += [single[i : i + 3] for i in range(0, len(single), 3)]
        self._searchers = [ahocorasick_rs.BytesAhoCorasick(g, matchkind=leftmost) for g in groups]

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
            # seen; then ~WINDOW_BYTES, whose lowered copy stays in cache for the searches after it.
            hi = min(len(arr), max(lo + 1, int(np.searchsorted(offsets, offsets[lo] + size))))
            rows, n_found = self._scan(arr.slice(lo, hi - lo))
            if n_found * DENSE_BYTES > offsets[hi] - offsets[lo]:
                found.append(np.arange(lo, len(arr)))
                break
            found.append(rows + lo)
            lo, size = hi, min(2 * size, WINDOW_BYTES)
        return np.concatenate(found) if len(found) > 1 else found[0]

    def _scan(self, arr: pa.Array) -> tuple[np.ndarray, int]:
        """Candidate rows of one window and the number of literals found in it."""
        offsets, data = _offsets_and_data(pc.ascii_lower(arr))
        spans = [ac.find_matches_as_indexes(data) for ac in self._searchers] if data.size else []
        spans = [np.array(s, np.int64)[:, 1:] for s in spans if s]
        if not spans:
            return np.zeros(0, np.int64), 0
        se = np.concatenate(spans) + offsets[0]
        first = np.searchsorted(offsets, se[:, 0], side="right") - 1  # the row holding a byte
        last = np.searchsorted(offsets, se[:, 1] - 1, side="right") - 1
        rows = [first]
        for lo, hi in zip(first[first != last], last[first != last], strict=True):
            rows.append(np.arange(lo + 1, hi + 1))  # a match across rows marks each row it touches
        return np.unique(np.concatenate(rows)), len(se)


def _offsets_and_data(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The ``len(arr) + 1`` value offsets (as int64) and a zero-copy uint8 view of the bytes they span."""
    width = 8 if pa.types.is_large_string(arr.type) else 4
    dtype = np.int64 if width == 8 else np.int32
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype, len(arr) + 1, arr.offset * width).astype(np.int64)
    if data_buf is None:
        return offsets, np.zeros(0, np.uint8)
    return offsets, np.frombuffer(data_buf, np.uint8)[offsets[0] : offsets[-1]]

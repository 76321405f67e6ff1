"""Fuzzed source files through ``rs5m.pipeline.ingest.ingest_file`` for each of the 11 PUB11 adapters.

Property, for every generated file: ``ingest_file`` either returns stats or raises ``SourceFormatError``
(a whole-file format error, after which no stats file marks the file done); it raises nothing else; the
stats invariant ``n_in = n_out + removed`` holds; ``n_in`` counts every row the file has; the kept
partitions plus the rejects file hold exactly ``n_in`` rows (no sample lost); and nothing is written
outside the version folder.

What a row is, per format:
- TSV sources (cc12m, cc3m, yfcc15m): every line (split on ``\\n``) that is not empty once its trailing
  ``\\r`` are removed; blank lines are not samples.
- WIT: the same, after the first line, which is the header.
- parquet sources (laion2b, laion400m, laioncoco, coyo700m): every parquet row.
- SBU: the longest of the ``image_urls`` / ``captions`` / ``user_ids`` lists.
- RedCaps: every element of ``annotations``; Visual Genome: every element of the top-level list.
- JSON sources: a document that does not parse, or lacks the top-level shape, is a whole-file error.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rs5m.config import IngestConfig, SourceInput
from rs5m.pipeline.ingest import ingest_file, ingest_paths, partition_name
from rs5m.sources.base import SourceFormatError
from rs5m.sources.wit import WIT_COLUMNS
from tests.faults import fuzz_settings, record, tree

# --- building blocks -----------------------------------------------------------------------------

_HUGE = [b"a" * 120_000, b"http://example.com/" + b"p" * 3000]
_SPECIAL = [
    b"",
    b"\x00",
    b"http://example.com/a.jpg",
    b"https://example.com/\x00x.png",
    b"HTTP://EXAMPLE.COM/B.JPG",
    b"ftp://example.com/c.jpg",
    b"  ",
    b"\xff\xfe",
    b"\xed\xa0\x80",  # UTF-8 encoded lone surrogate
    "caf\u00e9".encode("latin-1"),
    "\u65e5\u672c\u8a9e".encode("shift_jis"),
    "\u65e5\u672c\u8a9e".encode(),
    b"caf%C3%A9+au+lait",
    b"%ff%fe+bad",
    b"1",
    b"123456",
    b"-5",
    b"1e400",
    b"en",
    b"true",
]


_field = st.one_of(
    st.sampled_from(_SPECIAL),
    st.sampled_from(_HUGE),
    st.text(max_size=30).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=24),
    st.text(max_size=20).map(lambda s: s.encode("latin-1", "replace")),
).map(lambda b: b.replace(b"\n", b" "))


@st.composite
def _line(draw: st.DrawFn, n_fields: int) -> bytes:
    n = draw(st.one_of(st.just(n_fields), st.just(n_fields), st.integers(0, n_fields + 3)))
    return b"\t".join(draw(_field) for _ in range(n))


@st.composite
def _text_file(draw: st.DrawFn, line: st.SearchStrategy[bytes], header: bytes | None = None) -> bytes:
    lines = draw(st.lists(st.one_of(line, st.just(b""), st.binary(max_size=40)), max_size=25))
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    if header is not None:
        lines = [header, *lines]
    body = eol.join(lines) + (eol if draw(st.booleans()) else b"")
    return draw(st.one_of(st.just(body), st.just(body), st.binary(max_size=200)))


def _count_lines(data: bytes, skip_first: bool = False) -> int:
    pieces = data.split(b"\n")
    if data.endswith(b"\n"):
        pieces = pieces[:-1]
    if skip_first:
        pieces = pieces[1:]
    return sum(1 for p in pieces if p.rstrip(b"\r"))


@st.composite
def _compressed(draw: st.DrawFn, data: bytes) -> tuple[str, bytes, bool]:
    """(suffix, file bytes, truncated) for plain, gzip or bz2, sometimes cut short."""
    suffix = draw(st.sampled_from(["", ".gz", ".bz2"]))
    raw = {"": lambda d: d, ".gz": gzip.compress, ".bz2": bz2.compress}[suffix](data)
    if suffix and draw(st.integers(0, 4)) == 0:
        return suffix, raw[: draw(st.integers(0, max(len(raw) - 1, 0)))], True
    return suffix, raw, False


# --- the property --------------------------------------------------------------------------------


def _rows_in(paths: list[Path]) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)


def check_ingest(
    source: str,
    filename: str,
    data: bytes,
    expected: int | None,
    *,
    may_fail: bool,
    options: dict[str, Any] | None = None,
    aux: dict[str, bytes] | None = None,
    category: str | None = None,
) -> None:
    """Ingest ``data`` as ``filename`` of ``source`` and assert the module property.

    ``expected``: rows the file has (``None`` when unknowable, e.g. a truncated stream);
    ``may_fail``: whether a ``SourceFormatError`` is acceptable for this input; ``aux``: side files
    (labels, subset, regions) written beside the input, referenced from ``options`` as ``{aux}/name``;
    ``category``: the name results are recorded under (default ``sources/<source>``).
    """
    category = category or f"sources/{source}"
    root = Path(tempfile.mkdtemp(prefix="rs5m-fuzz-"))
    try:
        inp, version = root / "in", root / "v"
        inp.mkdir()
        version.mkdir()
        path = inp / filename
        path.write_bytes(data)
        opts = dict(options or {})
        for name, content in (aux or {}).items():
            (inp / name).write_bytes(content)
        opts = {k: v.replace("{aux}", str(inp)) if isinstance(v, str) else v for k, v in opts.items()}
        src = SourceInput(name=source, files=[str(path)], options=opts)
        cfg = IngestConfig(keep_all_rows=True)  # the normalised copy is what this test counts
        before = tree(root)
        paths = ingest_paths(version, source, partition_name(str(path)))
        outcome, lost = "ok", 0
        try:
            stats = ingest_file(src, str(path), version, cfg)
        except SourceFormatError:
            outcome = "format_error"
        except Exception as exc:
            record(category, handled=False, crash=True, detail=f"{type(exc).__name__}: {exc}"[:200])
            raise
        new = tree(root) - before
        outside = [p for p in new if not (p == "v" or p.startswith("v/"))]
        leftovers = [p for p in new if p.endswith(".tmp")]
        if outcome == "format_error":
            assert may_fail, f"{source}: SourceFormatError on an input in the source's format"
            assert not paths.stats.exists(), "a file with a format error was marked done"
        else:
            stats.check()
            if expected is not None:
                assert stats.n_in == expected, f"n_in={stats.n_in}, file has {expected} rows"
            kept = _rows_in([paths.output])
            pq.read_table(paths.output).validate(full=True)  # valid UTF-8 throughout
            rejected = _rows_in([paths.rejects])
            assert kept == stats.n_out and rejected == sum(stats.removed.values())
            lost = (expected if expected is not None else stats.n_in) - kept - rejected
        record(category, handled=not outside and lost == 0, outside=len(outside), lost=lost)
        assert not outside, f"files written outside the version folder: {outside}"
        assert not leftovers, f"temporary files left behind: {leftovers}"
        assert lost == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- TSV sources ---------------------------------------------------------------------------------


@st.composite
def _tsv_input(draw: st.DrawFn, n_fields: int) -> tuple[str, bytes, int | None, bool]:
    body = draw(_text_file(_line(n_fields)))
    suffix, raw, truncated = draw(_compressed(body))
    return suffix, raw, None if truncated else _count_lines(body), truncated or bool(suffix)


@pytest.mark.parametrize("source", ["cc12m", "cc3m"])
@fuzz_settings(15)
@given(data=st.data())
def test_cc_files(source: str, data: st.DataObject) -> None:
    """CC12M/CC3M two-column TSV (plain/gz/bz2), optionally with a fuzzed CC3M labels file."""
    suffix, raw, expected, compressed = data.draw(_tsv_input(2))
    options: dict[str, Any] = {"batch_rows": data.draw(st.sampled_from([3, 65_536]))}
    aux = None
    if source == "cc3m" and data.draw(st.booleans()):
        aux = {"labels.tsv": data.draw(_text_file(_line(5)))}
        options["labels_file"] = "{aux}/labels.tsv"
    # A corrupt compressed stream is the only whole-file error of these formats.
    check_ingest(source, f"x.tsv{suffix}", raw, expected, may_fail=compressed, options=options, aux=aux)


@fuzz_settings(15)
@given(data=st.data())
def test_yfcc_files(data: st.DataObject) -> None:
    """YFCC100M metadata lines (23 or 25 fields), optionally filtered by a fuzzed subset file."""
    n = data.draw(st.sampled_from([23, 25]))

    @st.composite
    def yfcc_line(draw: st.DrawFn) -> bytes:
        fields = draw(st.lists(_field, min_size=n, max_size=n))
        if draw(st.booleans()):
            id_at, url_at = (0, 14) if n == 23 else (1, 16)
            fields[id_at] = str(draw(st.integers(0, 10**15))).encode()
            fields[url_at] = b"http://example.com/" + fields[url_at][:20]
        return draw(st.one_of(st.just(b"\t".join(fields)), _line(n)))

    body = data.draw(_text_file(yfcc_line()))
    suffix, raw, truncated = data.draw(_compressed(body))
    options: dict[str, Any] = {"batch_rows": data.draw(st.sampled_from([4, 65_536]))}
    options["images_only"] = data.draw(st.booleans())
    aux, bad_subset = None, False
    if data.draw(st.booleans()):
        ids = data.draw(st.lists(st.integers(0, 10**15), max_size=10))
        aux = {"subset.tsv": b"".join(b"%d\t%d\thash\n" % (i, x) for i, x in enumerate(ids))}
        options["subset_file"] = "{aux}/subset.tsv"
        bad_subset = not ids  # an empty id list is not a subset file: a whole-file error
    expected = None if truncated else _count_lines(body)
    check_ingest(
        "yfcc15m", f"y{suffix}", raw, expected, may_fail=bool(suffix) or bad_subset, options=options, aux=aux
    )


@fuzz_settings(15)
@given(data=st.data())
def test_wit_files(data: st.DataObject) -> None:
    """WIT TSV: a header (sometimes shuffled, short or garbage) then 17-field lines."""
    cols = list(WIT_COLUMNS)
    header_kind = data.draw(st.sampled_from(["ok", "ok", "shuffled", "missing", "garbage"]))
    if header_kind == "shuffled":
        cols = data.draw(st.permutations(cols))
    elif header_kind == "missing":
        cols = [c for c in cols if c != data.draw(st.sampled_from(["language", "image_url"]))]
    header = b"\t".join(c.encode() for c in cols)
    if header_kind == "garbage":
        header = data.draw(st.binary(max_size=40)).replace(b"\n", b"")

    @st.composite
    def wit_line(draw: st.DrawFn) -> bytes:
        fields = draw(st.lists(_field, min_size=17, max_size=17))
        if draw(st.booleans()) and "language" in cols:
            fields[cols.index("language")] = draw(st.sampled_from([b"en", b"fr", b"\xff"]))
        return draw(st.one_of(st.just(b"\t".join(fields)), _line(17)))

    body = data.draw(_text_file(wit_line(), header=header))
    suffix, raw, truncated = data.draw(_compressed(body))
    expected = None if truncated else _count_lines(body, skip_first=True)
    options = {"batch_rows": data.draw(st.sampled_from([3, 65_536]))}
    check_ingest("wit", f"w.tsv{suffix}", raw, expected, may_fail=True, options=options)


# --- JSON sources --------------------------------------------------------------------------------

_json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["http://example.com/a.jpg", "https://e.com/\x00", "\ud800", "x" * 120_000, " "]),
)
_json_value = st.recursive(
    _json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def _json_file(draw: st.DrawFn, doc: Any) -> tuple[str, bytes, bool]:
    """(suffix, bytes, corrupted) of a JSON document, sometimes damaged or replaced by random bytes."""
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    raw = text.encode("utf-8", "surrogatepass")
    how = draw(st.sampled_from(["ok", "ok", "ok", "cut", "bytes", "nul"]))
    if how == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif how == "bytes":
        raw = draw(st.binary(max_size=60))
    elif how == "nul":
        i = draw(st.integers(0, len(raw)))
        raw = raw[:i] + b"\x00" + raw[i:]
    suffix = draw(st.sampled_from(["", "", ".gz"]))
    return suffix, gzip.compress(raw) if suffix else raw, how != "ok"


def _parse(raw: bytes, suffix: str) -> tuple[bool, Any]:
    """Parse the file as the adapters do (``json.load`` on the binary stream)."""
    try:
        return True, json.load(io.BytesIO(gzip.decompress(raw) if suffix else raw))
    except (ValueError, OSError, EOFError):
        return False, None


@fuzz_settings(15)
@given(data=st.data())
def test_sbu_files(data: st.DataObject) -> None:
    """SBU columnar JSON: lists of random JSON values with differing lengths, or wrong shapes."""
    doc: Any = {
        k: data.draw(st.lists(_json_value, max_size=8))
        for k in ("image_urls", "captions", "user_ids")
        if data.draw(st.integers(0, 5))
    }
    if data.draw(st.integers(0, 6)) == 0:
        doc = data.draw(_json_value)
    suffix, raw, _ = data.draw(_json_file(doc))
    ok, parsed = _parse(raw, suffix)
    lists = {
        k: parsed[k]
        for k in ("image_urls", "captions", "user_ids")
        if isinstance(parsed, dict) and k in parsed
    }
    shaped = ok and isinstance(parsed, dict) and all(isinstance(v, list) for v in lists.values())
    shaped = shaped and {"image_urls", "captions"} <= set(lists)
    expected = max(len(v) for v in lists.values()) if shaped else None
    check_ingest("sbu", f"sbu.json{suffix}", raw, expected, may_fail=not shaped, options={"batch_rows": 3})


_REDCAPS_KEYS = ["image_id", "url", "caption", "subreddit", "created_utc", "score", "permalink", "x"]


@fuzz_settings(15)
@given(data=st.data())
def test_redcaps_files(data: st.DataObject) -> None:
    """RedCaps annotation files: entries of random JSON, objects with random field values."""
    entry = st.one_of(st.dictionaries(st.sampled_from(_REDCAPS_KEYS), _json_value, max_size=8), _json_value)
    doc: Any = {"info": {}, "annotations": data.draw(st.lists(entry, max_size=10))}
    if data.draw(st.integers(0, 6)) == 0:
        doc = data.draw(_json_value)
    suffix, raw, _ = data.draw(_json_file(doc))
    ok, parsed = _parse(raw, suffix)
    shaped = ok and isinstance(parsed, dict) and isinstance(parsed.get("annotations"), list)
    expected = len(parsed["annotations"]) if shaped else None
    check_ingest("redcaps", f"r.json{suffix}", raw, expected, may_fail=not shaped, options={"batch_rows": 4})


@fuzz_settings(15)
@given(data=st.data())
def test_vg_files(data: st.DataObject) -> None:
    """Visual Genome image_data.json with a fuzzed region_descriptions.json (or none)."""
    keys = ["image_id", "id", "url", "width", "height", "coco_id", "flickr_id"]
    entry = st.one_of(
        st.fixed_dictionaries(
            {"image_id": st.integers(0, 20), "url": st.sampled_from(["http://e.com/1.jpg", "x"])},
            optional={k: _json_value for k in keys[1:] if k != "url"},
        ),
        _json_value,
    )
    entries = [dict(e) if isinstance(e, dict) else e for e in data.draw(st.lists(entry, max_size=10))]
    doc: Any = entries if data.draw(st.integers(0, 6)) else data.draw(_json_value)
    suffix, raw, _ = data.draw(_json_file(doc))
    ok, parsed = _parse(raw, suffix)
    shaped = ok and isinstance(parsed, list)
    options: dict[str, Any] = {"batch_rows": 3, "max_regions": data.draw(st.integers(1, 3))}
    aux = None
    if data.draw(st.booleans()):
        region = st.fixed_dictionaries(
            {"region_id": st.integers(0, 9), "image_id": st.integers(0, 20), "phrase": _json_value}
        )
        regions = st.lists(
            st.fixed_dictionaries({"id": st.integers(0, 20), "regions": st.lists(region, max_size=4)})
        )
        rdoc = data.draw(st.one_of(regions, _json_value))
        rsuffix, rraw, _ = data.draw(_json_file(rdoc))
        rok, rparsed = _parse(rraw, rsuffix)
        shaped = shaped and rok and isinstance(rparsed, list)
        aux = {f"regions.json{rsuffix}": rraw}
        options["regions_file"] = f"{{aux}}/regions.json{rsuffix}"
    expected = len(parsed) if shaped else None
    check_ingest(
        "vg", f"image_data.json{suffix}", raw, expected, may_fail=not shaped, options=options, aux=aux
    )


# --- parquet sources -----------------------------------------------------------------------------

_LAYOUT_COLS = {
    "laion2b": ["URL", "TEXT", "SAMPLE_ID", "WIDTH", "HEIGHT", "similarity", "NSFW", "LICENSE", "hash"],
    "laion400m": ["url", "text", "sample_id", "width", "height", "punsafe", "pwatermark"],
    "coyo700m": ["id", "url", "text", "width", "height", "clip_similarity_vitb32", "image_phash"],
    "laioncoco": ["URL", "TEXT", "top_caption", "all_captions", "WIDTH", "HEIGHT", "similarity"],
}
_REQUIRED = {"laion2b": 2, "laion400m": 2, "coyo700m": 3, "laioncoco": 4}

_bin_value = st.one_of(st.none(), _field)
_str_value = st.one_of(
    st.none(), st.text(max_size=20), st.sampled_from(["http://e.com/a.jpg", "a\x00b", " ", "x" * 120_000])
)


_KEY_COLS = {"SAMPLE_ID", "sample_id", "id"}


@st.composite
def _column(draw: st.DrawFn, n: int, name: str) -> pa.Array:
    """A column of ``n`` values of a random type (text, bytes with bad UTF-8, numbers, lists, nulls)."""
    kinds = ["str", "str", "bin", "bin", "int", "float", "null", "list", "dict", "large"]
    kind = draw(st.sampled_from(kinds))
    if kind == "str":
        return pa.array(draw(st.lists(_str_value, min_size=n, max_size=n)), pa.string())
    if kind in ("bin", "large"):
        typ = pa.binary() if kind == "bin" else pa.large_binary()
        values = _bin_value
        return pa.array(draw(st.lists(values, min_size=n, max_size=n)), typ)
    if kind == "int":
        ints = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))
        return pa.array(draw(st.lists(ints, min_size=n, max_size=n)), pa.int64())
    if kind == "float":
        return pa.array(
            draw(st.lists(st.one_of(st.none(), st.floats()), min_size=n, max_size=n)), pa.float64()
        )
    if kind == "list":
        items = st.one_of(st.none(), st.lists(st.one_of(st.none(), st.text(max_size=8)), max_size=3))
        return pa.array(draw(st.lists(items, min_size=n, max_size=n)), pa.list_(pa.string()))
    if kind == "dict":
        return pa.array(draw(st.lists(_str_value, min_size=n, max_size=n)), pa.string()).dictionary_encode()
    return pa.nulls(n)


@pytest.mark.parametrize("source", sorted(_LAYOUT_COLS))
@fuzz_settings(12)
@given(data=st.data())
def test_parquet_files(source: str, data: st.DataObject) -> None:
    """Parquet parts with random column subsets and types, bad UTF-8, NULs, huge values, or not parquet."""
    n = data.draw(st.integers(0, 12))
    names = data.draw(st.lists(st.sampled_from(_LAYOUT_COLS[source]), unique=True, max_size=9))
    table = pa.table({c: data.draw(_column(n, c)) for c in names}) if names else pa.table({"z": pa.nulls(n)})
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=max(1, data.draw(st.integers(1, 5))))
    raw = buf.getvalue()
    garbage = data.draw(st.integers(0, 8)) == 0
    if garbage:
        raw = data.draw(st.one_of(st.binary(max_size=80), st.just(raw[: len(raw) // 2])))
    options = {"batch_rows": data.draw(st.sampled_from([2, 65_536]))}
    may_fail = garbage or _format_error_expected(source, table, n)
    check_ingest(source, "part.parquet", raw, None if garbage else n, may_fail=may_fail, options=options)


def _format_error_expected(source: str, table: pa.Table, n: int) -> bool:
    """Whole-file errors of a readable parquet part: a missing url/caption column, a caption list
    column that is not a list (LAION-COCO, checked up front), or a non-text url/caption/fallback column
    (checked per batch, so only when the file has rows)."""
    cols = {c.lower(): table.column(c).type for c in table.column_names}
    url, caption = ("url", "text") if source != "laioncoco" else ("url", "all_captions")
    if url not in cols or caption not in cols:
        return True
    textual = (pa.types.is_string, pa.types.is_binary, pa.types.is_large_binary, pa.types.is_null)
    text_cols = [url] if source == "laioncoco" else [url, caption]
    text_cols += [c for c in ("top_caption", "text") if source == "laioncoco" and c in cols]
    if source == "laioncoco" and not pa.types.is_list(cols["all_captions"]):
        return True
    if n > 0 and any(pa.types.is_list(t) for c, t in cols.items() if c in {k.lower() for k in _KEY_COLS}):
        return True  # an id column that is neither numbers nor text
    return n > 0 and any(
        not (any(f(cols[c]) for f in textual) or pa.types.is_dictionary(cols[c])) for c in text_cols
    )


# --- fuzz findings (fixed), kept as regression tests with their minimal inputs ---------------------


def test_fixed_wit_superscript_width() -> None:
    """Minimal input: a WIT row whose original_width is ``²`` crashes ingest with ValueError."""
    row = {c: "" for c in WIT_COLUMNS} | {"language": "en", "image_url": "http://e.com/a.jpg"}
    row |= {"caption_reference_description": "a", "original_width": "\u00b2"}
    body = ("\t".join(WIT_COLUMNS) + "\n" + "\t".join(row[c] for c in WIT_COLUMNS) + "\n").encode()
    check_ingest("wit", "w.tsv", body, 1, may_fail=False, category="findings")


def test_fixed_vg_superscript_width() -> None:
    """Minimal input: ``[{"image_id": 1, "width": "²"}]`` crashes Visual Genome ingest with ValueError."""
    check_ingest(
        "vg",
        "image_data.json",
        b'[{"image_id": 1, "width": "\\u00b2"}]',
        1,
        may_fail=False,
        category="findings",
    )


def test_fixed_yfcc_huge_photoid_with_subset() -> None:
    """Minimal input: a 23-field YFCC line with photoid ``99999999999999999999`` and any subset file."""
    fields = [b"99999999999999999999"] + [b""] * 22
    check_ingest(
        "yfcc15m",
        "y.tsv",
        b"\t".join(fields) + b"\n",
        1,
        may_fail=False,
        options={"subset_file": "{aux}/s.tsv"},
        aux={"s.tsv": b"0\t1\th\n"},
        category="findings",
    )


def _coyo_file(extra: dict[str, pa.Array]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"url": ["http://e.com/a.jpg"], "text": ["a"], **extra}), buf)
    return buf.getvalue()


@pytest.mark.parametrize("value", [b"\x80\x01", b"\x80"], ids=["with-control-char", "plain"])
def test_fixed_parquet_binary_extra_bad_utf8(value: bytes, tmp_path: Path) -> None:
    """A COYO part whose *binary* extras column holds invalid UTF-8: the row is ``bad_encoding``.

    Before the fix ``b"\\x80\\x01"`` crashed in ``_json_strings`` and ``b"\\x80"`` was copied into the
    kept row's extras (binary columns validate as bytes, not as text).
    """
    raw = _coyo_file({"image_phash": pa.array([value], pa.binary())})
    check_ingest("coyo700m", "p.parquet", raw, 1, may_fail=False, category="findings")
    path = tmp_path / "p.parquet"
    urls, texts = ["http://e.com/a.jpg", "http://e.com/b.jpg"], ["a", "b"]
    phash = pa.array([value, b"ab"], pa.binary())
    pq.write_table(pa.table({"url": urls, "text": texts, "image_phash": phash}), path)
    (tmp_path / "v").mkdir()
    src = SourceInput(name="coyo700m", files=[str(path)], options={})
    stats = ingest_file(src, str(path), tmp_path / "v", IngestConfig())
    assert (stats.n_in, stats.n_out, stats.removed) == (2, 1, {"bad_encoding": 1})


def test_fixed_parquet_list_id_column() -> None:
    """A COYO part whose ``id`` column is ``list<string>`` is a whole-file ``SourceFormatError``."""
    raw = _coyo_file({"id": pa.array([["1"]], pa.list_(pa.string()))})
    check_ingest("coyo700m", "p.parquet", raw, 1, may_fail=True, category="findings")

"""The adapter registry, options models, and the shared Arrow / text helpers."""

from __future__ import annotations

import json
import math
from datetime import datetime

import pyarrow as pa
import pytest
from pydantic import ValidationError

from rs5m.core.schema import SOURCE_ORDER
from rs5m.sources import ADAPTERS, get_adapter
from rs5m.sources._arrow import json_objects, json_values, to_int32, to_key
from rs5m.sources._text import join_sentences, split_tsv
from rs5m.sources.base import AdapterOptions


def test_registry_covers_every_source_in_order() -> None:
    assert list(ADAPTERS) == SOURCE_ORDER
    for name, adapter in ADAPTERS.items():
        assert adapter.name == name
        assert issubclass(adapter.options_model, AdapterOptions)
        assert adapter.options_model().batch_rows > 0
    with pytest.raises(ValueError, match="no source adapter named 'laion5b'"):
        get_adapter("laion5b")


def test_options_are_validated() -> None:
    with pytest.raises(ValidationError):
        get_adapter("laioncoco").options_model(caption_mode="blip")
    with pytest.raises(ValidationError):
        get_adapter("wit").options_model(caption_fields=["page_title"])
    with pytest.raises(ValidationError):
        get_adapter("cc12m").options_model(labels_file="x.tsv")  # CC12M has no labels
    opts = get_adapter("yfcc15m").options_model(subset_file="s.tsv", caption_fields=["description"])
    assert (opts.subset_file, opts.caption_fields, opts.images_only) == ("s.tsv", ["description"], True)


def test_json_objects_round_trip() -> None:
    strings = ["plain", 'q"uote', "back\\slash", "ctl\x01\x1f", "tab\tnl\n", "unicode é 中 \u2028", None]
    n = len(strings)
    fields = [
        ("s", pa.array(strings)),
        ("f", pa.array([0.1, 1e21, 1e-7, math.inf, math.nan, -0.0, None])),
        ("f32", pa.array([0.31, 1.5, None, 2.0, 0.0, 3.25, 1.0], pa.float32())),
        ("i", pa.array([1, -2, None, 2**62, 0, 5, 6], pa.int64())),
        ("b", pa.array([True, False, None, True, True, False, None])),
        ("t", pa.array([datetime(2020, 1, 2, 3, 4, 5)] * n, pa.timestamp("s"))),
        ("l", pa.array([[1, 2], [], None, [3], [4], [5], [6]])),
    ]
    texts = json_objects(fields, n).to_pylist()
    decoded = [json.loads(t) for t in texts]
    assert [d["s"] for d in decoded] == strings
    assert [d["f"] for d in decoded] == [0.1, 1e21, 1e-7, None, None, -0.0, None]
    assert [d["f32"] for d in decoded] == [0.31, 1.5, None, 2.0, 0.0, 3.25, 1.0]
    assert [d["i"] for d in decoded] == [1, -2, None, 2**62, 0, 5, 6]
    assert [d["b"] for d in decoded] == [True, False, None, True, True, False, None]
    assert decoded[0]["t"] == "2020-01-02 03:04:05"
    assert [d["l"] for d in decoded] == [[1, 2], [], None, [3], [4], [5], [6]]
    assert json_objects([], 2).to_pylist() == [None, None]


def test_dimension_and_key_conversion() -> None:
    assert to_int32(pa.array([1.9, -1.0, math.nan, 2.0**40, None]), 5).to_pylist() == [
        1,
        None,
        None,
        None,
        None,
    ]
    assert to_int32(pa.array(["640", "x"]), 2).to_pylist() == [None, None]
    assert to_int32(pa.array(["640", "12"]), 2).to_pylist() == [640, 12]
    assert to_int32(None, 2).to_pylist() == [None, None]
    assert to_key(pa.array([3.0, math.inf, None]), 3).to_pylist() == ["3", None, None]
    assert to_key(pa.array([2**40], pa.int64()), 1).to_pylist() == [str(2**40)]
    assert to_key(None, 1).to_pylist() == [None]


def test_join_sentences_and_split_tsv() -> None:
    assert join_sentences(["a cat.", " ", None, "a dog.", "a bird"]) == "a cat. a dog. a bird"
    assert join_sentences(["last keeps its period."]) == "last keeps its period."
    assert join_sentences(["a", "b"], sep=" ") == "a b"
    assert join_sentences([]) == ""
    assert split_tsv(b"a\tb", 2) == (["a", "b"], "", "")
    assert split_tsv(b"a\tb\tc", (23, 25))[1:] == (
        "malformed_row",
        "expected 23 or 25 tab-separated fields, got 3",
    )
    assert split_tsv(b"\xc3\x28\tb", 2)[1] == "bad_encoding"


def test_json_values_of_an_empty_nested_column_is_typed() -> None:
    """Found by fuzzing: an empty batch of a list column gave a null-typed array and an ArrowInvalid."""
    empty = pa.array([], pa.list_(pa.string()))
    assert json_values(empty).type == pa.string()
    assert json_objects([("tags", empty)], 0).to_pylist() == []

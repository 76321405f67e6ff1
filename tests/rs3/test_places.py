"""Place-name extraction over captions (gazetteer matcher)."""

from __future__ import annotations

from rs5m.rs3.places import count_places, place_matcher


def _names(text: str) -> list[tuple[str, str]]:
    return [(m.text, m.kind) for m in place_matcher().find(text)]


def test_cities_and_countries():
    assert _names("Aerial view of Paris, France") == [("Paris", "city"), ("France", "country")]
    assert _names("satellite image of New York City and Los Angeles") == [
        ("New York City", "city"),
        ("Los Angeles", "city"),
    ]
    assert _names("aerial view of iceland at sunrise") == [("iceland", "country")]  # countries in any case
    assert _names("drone shot over São Paulo") == [("São Paulo", "city")]
    assert _names("the U.S. coast") == [("U.S", "country")]


def test_lowercase_and_common_words_are_not_cities():
    assert _names("a nice view of paris from a mobile tower") == []
    assert _names("Aerial View Of The Delta Near The Park") == []


def test_counts():
    m = place_matcher()
    summary = count_places([m.find("Rome, Italy"), m.find("a field"), m.find("Rome")])
    assert summary["texts_with_place"] == {"yes": 2, "no": 1}
    assert summary["by_name"]["Rome"] == 2 and summary["by_kind"] == {"city": 2, "country": 1}
    assert summary["by_country"]["IT"] == 3

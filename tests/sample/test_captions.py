"""Captions plant exactly the keywords they claim, under the word-start / prefix rule."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from rs5m.sample import vocab
from rs5m.sample.captions import Captioner, check, clean_sentences, match_patterns
from rs5m.sample.vocab import HIT_FORMS, KEYWORD_PATTERNS

FILLER = (vocab.PLACES + vocab.SCENES + vocab.PRODUCTS + vocab.EVERYDAY + vocab.BLIP_PLAIN + vocab.VG_PHRASES
          + vocab.WIKI_PLAIN + vocab.FLICKR_TITLES + vocab.TAGS)  # fmt: skip


def test_44_patterns_each_with_forms() -> None:
    assert len(KEYWORD_PATTERNS) == 44 == len(set(p.lower() for p in KEYWORD_PATTERNS))
    assert set(HIT_FORMS) == set(KEYWORD_PATTERNS)
    for pattern, forms in HIT_FORMS.items():
        for form in forms:
            assert match_patterns(form) == (pattern,), form


def test_filler_and_near_misses_are_keyword_free() -> None:
    for text in FILLER + vocab.NEAR_MISSES:
        assert match_patterns(text) == (), text


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("aerospace imagery", ()),
        ("Aerial View of Paris", ("aerial view",)),
        ("Sentinel-2 and sentinel 2", ("Sentinel-2", "sentinel 2")),
        ("Modish chair", ("MODIS",)),
        ("outer space imagination", ("space imag",)),
        ("cyberspace views", ()),
        ("(satellite image)", ("satellite imag",)),
    ],
)
def test_rule_examples(text: str, want: tuple[str, ...]) -> None:
    assert match_patterns(text) == want


def test_false_positives_hit_their_pattern() -> None:
    for text, pattern in vocab.FALSE_POSITIVES:
        assert match_patterns(text) == (pattern,)


def test_styles_plant_exactly_the_requested_patterns() -> None:
    rng = random.Random(7)
    cap = Captioner(
        rng, ["There is a baseball field beside the green park", "Many cars are parked near the road"]
    )
    for i in range(300):
        pats = tuple(rng.sample(KEYWORD_PATTERNS, i % 3))
        check(cap.alt(pats), pats)
        check(cap.wiki(pats), pats)
        check(cap.cc3m(pats), pats)
        check(cap.cc12m(pats), pats)
        check(cap.sbu(pats), pats)
        check(cap.reddit(pats)[0], pats)
        title, desc = cap.flickr(pats)
        assert set(match_patterns(title)) == set(match_patterns(desc)) == set(pats)
        assert set(match_patterns(". ".join(cap.blip(pats, 5)))) == set(pats)
        assert set(match_patterns(" ".join(cap.vg(pats, 4)))) == set(pats)


def test_check_raises_on_a_mismatch() -> None:
    with pytest.raises(AssertionError):
        check("aerial view", ())


def test_clean_sentences_drops_keyword_sentences() -> None:
    got = clean_sentences(["An aerial view of a port.", "Two ships are moored at the gray port .", "x"])
    assert got == ["Two ships are moored at the gray port"]


def test_agrees_with_the_project_matcher() -> None:
    keywords = pytest.importorskip("rs5m.pipeline.keywords.matcher")
    texts = [f for forms in HIT_FORMS.values() for f in forms] + list(vocab.NEAR_MISSES)
    texts += [t for t, _ in vocab.FALSE_POSITIVES] + list(FILLER)
    got = keywords.KeywordMatcher().hits(pa.array(texts)).to_pylist()
    assert [tuple(sorted(g)) for g in got] == [tuple(sorted(match_patterns(t))) for t in texts]

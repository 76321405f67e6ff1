"""Caption text for the sample world, with planted keyword hits.

Contract:
- ``Captioner.<style>(patterns)`` returns text whose keyword matches are exactly ``patterns`` (an empty
  tuple gives keyword-free text). The planted set, not a filter run, is what ``expected.json`` counts;
  ``check`` re-verifies each caption with a reference matcher and raises on a generator bug.
- Keyword rule (reference §3 as implemented by ``rs5m.pipeline.keywords.matcher``): case-insensitive; a
  pattern matches
  where it starts a word (not preceded by a letter or digit); stems are prefixes, so the text after the
  pattern is unconstrained ("aerospace imagery" is no hit for "space imag", "modish" is a hit for "modis").
- Deterministic for a given ``random.Random`` state and ``rs_sentences``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from rs5m.sample import vocab
from rs5m.sample.vocab import HIT_FORMS, KEYWORD_PATTERNS

_MATCHERS = [(p, re.compile(r"(?<![^\W_])" + re.escape(p), re.IGNORECASE)) for p in KEYWORD_PATTERNS]


def match_patterns(text: str) -> tuple[str, ...]:
    """Reference matcher: the patterns (in ``KEYWORD_PATTERNS`` order) that occur in ``text``."""
    return tuple(p for p, rx in _MATCHERS if rx.search(text))


def check(text: str, patterns: Sequence[str]) -> str:
    """Return ``text`` if it matches exactly ``patterns``; raise ``AssertionError`` otherwise."""
    found = set(match_patterns(text))
    if found != set(patterns):
        raise AssertionError(f"sample caption {text!r} plants {sorted(patterns)} but matches {sorted(found)}")
    return text


def clean_sentences(lines: Sequence[str], limit: int = 2000) -> list[str]:
    """Keep keyword-free, single-line, tab-free sentences (real RS captions used as scene filler)."""
    out: list[str] = []
    for line in lines:
        s = " ".join(line.split()).rstrip(". ")
        if 12 <= len(s) <= 200 and not match_patterns(s) and '"' not in s:
            out.append(s)
            if len(out) >= limit:
                break
    return out


class Captioner:
    """Source-styled captions; one instance per world, fed the world's seeded ``random.Random``."""

    def __init__(self, rng: random.Random, rs_sentences: Sequence[str] = ()) -> None:
        self.rng = rng
        self.rs_sentences = list(rs_sentences)

    # -- pieces ------------------------------------------------------------------------------------
    def _c(self, options: Sequence[str]) -> str:
        return options[self.rng.randrange(len(options))]

    def forms(self, patterns: Sequence[str]) -> str:
        """Surface forms of ``patterns`` joined with " and " ("aerial view and Landsat 8")."""
        return " and ".join(self._c(HIT_FORMS[p]) for p in patterns)

    def scene(self) -> str:
        """A built-in RS scene noun phrase ("a solar farm")."""
        return self._c(vocab.SCENES)

    def described(self, kw: str, article: bool = False) -> str:
        """``kw`` applied to a scene: "[a ]<kw> of <scene>", or with real sentences (70%) a whole
        RSITMD / RS3 sentence followed by "in this <kw>"."""
        if self.rs_sentences and self.rng.random() < 0.7:
            return f"{self._c(self.rs_sentences)} in this {kw}"
        art = "" if not article or kw.endswith("s") else "an " if kw[0].lower() in "aeiou" else "a "
        return f"{art}{kw} of {self.scene()}"

    def near_miss(self) -> str:
        """A caption that looks RS-related but matches no pattern."""
        return check(self._c(vocab.NEAR_MISSES), ())

    def false_positive(self) -> tuple[str, str]:
        """A non-RS caption that hits one pattern only through prefix matching: (text, pattern)."""
        text, pattern = self._c(vocab.FALSE_POSITIVES)
        return check(text, (pattern,)), pattern

    def plain(self) -> str:
        """A keyword-free everyday or product alt-text."""
        r = self.rng.random()
        if r < 0.45:
            tail = self._c(("", " - Stock Image", " | Free Shipping", " for sale", " (2018)", ""))
            return check(self._c(vocab.PRODUCTS) + tail, ())
        if r < 0.9:
            return check(self._c(vocab.EVERYDAY), ())
        return check(f"{self._c(vocab.PLACES)} travel photo {self.rng.randint(1998, 2022)}", ())

    # -- styles ------------------------------------------------------------------------------------
    def alt(self, patterns: Sequence[str]) -> str:
        """LAION / COYO / CC12M alt-text."""
        if not patterns:
            return self.plain()
        kw, place = self.forms(patterns), self._c(vocab.PLACES)
        t = self._c(
            (
                f"{kw} of {place}",
                f"{place} {kw} stock photo",
                f"{self.described(kw)}, {place}",
                f"Stock image: {self.described(kw)}",
                f"{self.described(kw)} | {self.rng.randint(2005, 2022)}",
                self.described(kw),
            )
        )
        t = t[0].upper() + t[1:]
        if self.rng.random() < 0.15:
            t = t.title()
        return check(t, patterns)

    def blip(self, patterns: Sequence[str], n: int) -> list[str]:
        """LAION-COCO ``all_captions``: ``n`` lower-case BLIP sentences; the patterns are spread over the
        first ones (so ``top_caption`` = sentence 0 carries at least one when any is planted)."""
        n = max(n, len(patterns))
        out = [self._c(vocab.BLIP_PLAIN) for _ in range(n)]
        for i, p in enumerate(patterns):
            j = i % n
            out[j] = self.described(self._c(HIT_FORMS[p]), article=True).lower()
        check(". ".join(out), patterns)
        return out

    def wiki(self, patterns: Sequence[str]) -> str:
        """WIT reference description."""
        if not patterns:
            return check(self._c(vocab.WIKI_PLAIN), ())
        kw, place = self.forms(patterns), self._c(vocab.PLACES)
        t = self._c(
            (f"{kw} of {place} in {self.rng.randint(1950, 2020)}", f"{place}, {kw}", self.described(kw))
        )
        return check(t[0].upper() + t[1:], patterns)

    def flickr(self, patterns: Sequence[str]) -> tuple[str, str]:
        """YFCC (title, description), both carrying exactly ``patterns`` (both empty of them if none)."""
        if not patterns:
            title = self._c(vocab.FLICKR_TITLES).format(
                n=self.rng.randint(1000, 9999), y=self.rng.randint(2004, 2014)
            )
            desc = self._c(("", "", f"Our trip to {self._c(vocab.PLACES)}", "Taken with my new camera."))
            return check(title, ()), check(desc, ())
        kw, place = self.forms(patterns), self._c(vocab.PLACES)
        title = check(f"{kw[0].upper()}{kw[1:]} of {place}", patterns)
        desc = check(f"Taken over {place}: {self.described(kw)}.", patterns)
        return title, desc

    def cc3m(self, patterns: Sequence[str]) -> str:
        """CC3M hypernymised, lower-case caption."""
        if not patterns:
            return check(self._c(vocab.EVERYDAY).lower().replace("paris", "a city"), ())
        kw = self.forms(patterns).lower()
        t = self._c((self.described(kw), f"{kw} of a city in the morning", f"{kw} of {self.scene()} at dusk"))
        return check(t.lower(), patterns)

    def cc12m(self, patterns: Sequence[str]) -> str:
        """CC12M caption (alt-text with <PERSON> placeholders now and then)."""
        if not patterns and self.rng.random() < 0.3:
            return check(self._c(("<PERSON> walks the runway", "<PERSON> with her dog in the park")), ())
        return self.alt(patterns)

    def reddit(self, patterns: Sequence[str]) -> tuple[str, str]:
        """RedCaps (caption, raw_caption): cleaned lower-case caption, raw post title with [OC] tags."""
        if patterns:
            cap = check(
                f"{self.forms(patterns).lower()} of {self._c(vocab.PLACES).lower()} at sunrise", patterns
            )
        else:
            cap = check(self._c(vocab.EVERYDAY).lower(), ())
        w, h = self._c(((4032, 3024), (6000, 4000), (3000, 2000)))
        return cap, f"[OC] {cap[0].upper()}{cap[1:]} [{w}x{h}]"

    def sbu(self, patterns: Sequence[str]) -> str:
        """SBU user caption."""
        if not patterns:
            return check(self._c(vocab.EVERYDAY) + self._c(("", " :)", " last summer")), ())
        return check(f"{self.forms(patterns)} of my neighbourhood, the house is in the middle", patterns)

    def vg(self, patterns: Sequence[str], n: int) -> list[str]:
        """Visual Genome region phrases; the first carries the patterns."""
        out = [self._c(vocab.VG_PHRASES) for _ in range(n)]
        if patterns:
            out[0] = f"{self.forms(patterns).lower()} on the screen"
        check(". ".join(out), patterns)
        return out

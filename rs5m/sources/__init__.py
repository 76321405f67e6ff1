"""Source adapters for the 11 PUB11 datasets, keyed by the names of ``rs5m.core.schema.Source``.

Each adapter reads one file in its official distribution formats (the original ones and today's
re-releases, detected per file) and yields ``RawBatch`` objects; ``detect`` names a file's layout and
``pieces`` splits a big file into partitions (see ``rs5m.sources.base`` for the contract; docs/sources.md
for the layouts). Use ``get_adapter(name)`` and validate a source's options with
``adapter.options_model(**options)``.
"""

from __future__ import annotations

from rs5m.sources.base import SourceAdapter
from rs5m.sources.cc import CC3MAdapter, CC12MAdapter
from rs5m.sources.coyo import CoyoAdapter
from rs5m.sources.laion import Laion2bAdapter, Laion400mAdapter, LaionCocoAdapter
from rs5m.sources.redcaps import RedcapsAdapter
from rs5m.sources.sbu import SbuAdapter
from rs5m.sources.vg import VgAdapter
from rs5m.sources.wit import WitAdapter
from rs5m.sources.yfcc import YfccAdapter

ADAPTERS: dict[str, SourceAdapter] = {
    a.name: a
    for a in (
        Laion2bAdapter(),
        CoyoAdapter(),
        LaionCocoAdapter(),
        Laion400mAdapter(),
        WitAdapter(),
        YfccAdapter(),
        CC12MAdapter(),
        RedcapsAdapter(),
        CC3MAdapter(),
        SbuAdapter(),
        VgAdapter(),
    )
}


def get_adapter(name: str) -> SourceAdapter:
    """Return the adapter registered for source ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise ValueError(f"no source adapter named {name!r}; known: {sorted(ADAPTERS)}") from None


__all__ = ["ADAPTERS", "get_adapter"]

"""The normalised sample schema shared by every PUB11 source, and the reason codes for removed rows.

Contract:
- Every source adapter produces rows that the ingest driver turns into ``SAMPLE_SCHEMA``.
- ``uid`` is stable across rebuilds: ``make_uid(source, key)`` where ``key`` is the source's own id
  (LAION SAMPLE_ID, COYO id, YFCC photoid, RedCaps image_id, VG image_id) or, where a source has none,
  the URL joined with the caption.
- ``extras`` is a JSON object (text) with the source-specific fields later stages need.
- Every row that leaves the pipeline is recorded in a rejects file with ``REJECT_SCHEMA`` and one of
  the reason codes below.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

import pyarrow as pa

SAMPLE_SCHEMA = pa.schema(
    [
        pa.field("uid", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("extras", pa.string()),
    ]
)

REJECT_SCHEMA = pa.schema(
    [
        pa.field("uid", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
    ]
)


class Source(StrEnum):
    """The 11 PUB11 sources, in the order of the RS5M funnel table."""

    LAION2B = "laion2b"
    COYO700M = "coyo700m"
    LAIONCOCO = "laioncoco"
    LAION400M = "laion400m"
    WIT = "wit"
    YFCC15M = "yfcc15m"
    CC12M = "cc12m"
    REDCAPS = "redcaps"
    CC3M = "cc3m"
    SBU = "sbu"
    VG = "vg"


# Names as printed in the RS5M PUB11 table (README / paper Table VII).
DISPLAY_NAMES: dict[str, str] = {
    "laion2b": "LAION2B",
    "coyo700m": "COYO700M",
    "laioncoco": "LAIONCOCO",
    "laion400m": "LAION400M",
    "wit": "WIT",
    "yfcc15m": "YFCC15M",
    "cc12m": "CC12M",
    "redcaps": "Redcaps",
    "cc3m": "CC3M",
    "sbu": "SBU",
    "vg": "VG",
}
SOURCE_ORDER: list[str] = [s.value for s in Source]


class StageName(StrEnum):
    """Every stage that records counts in the lineage store, in pipeline order: the one list of names.

    PUB11 (subset ``pub11``): ingest .. package. RS3 (subset ``rs3``): read, caption. PUB11 geo
    metadata (subset ``geometa``, coverage, never removals): meta_caption, places. Which function runs a
    stage, its kind and its config sections are in ``rs5m.pipeline.registry``; where its files go is
    ``rs5m.core.layout``.
    """

    INGEST = "ingest"
    KEYWORD = "keyword"
    DOWNLOAD = "download"
    VALIDITY = "validity"
    OUTLIER_SCORE = "outlier_score"
    DEDUP = "dedup"
    OUTLIER = "outlier"
    PACKAGE = "package"
    RS3_READ = "read"
    RS3_CAPTION = "caption"
    META_CAPTION = "meta_caption"
    PLACES = "places"


class Reason(StrEnum):
    """Why a row left the pipeline. One code per distinct cause; details go in the ``detail`` column."""

    # ingest
    MALFORMED_ROW = "malformed_row"  # wrong field count, unparsable JSON/TSV line, wrong types
    BAD_ENCODING = "bad_encoding"  # text that is not valid UTF-8 (or its declared encoding)
    MISSING_URL = "missing_url"
    BAD_URL = "bad_url"  # not http(s), unparsable, or over the length limit
    MISSING_CAPTION = "missing_caption"
    NON_ENGLISH = "non_english"  # WIT rows whose language is not the configured one
    NOT_IN_SUBSET = "not_in_subset"  # YFCC100M rows outside the OpenAI YFCC15M id list
    NOT_AN_IMAGE = "not_an_image"  # YFCC100M rows that are videos (marker = 1)
    # keyword
    NO_KEYWORD_MATCH = "no_keyword_match"
    DUPLICATE_RECORD = "duplicate_record"  # an exact copy (same uid) of a kept hit in the same partition
    # download
    DOWNLOAD_FAILED = "download_failed"  # permanent: 404/410/403/other 4xx, connection refused, TLS
    DNS_FAILED = "dns_failed"  # permanent: the name does not exist or has no address (NXDOMAIN)
    DNS_TRANSIENT = "dns_transient"  # transient: EAI_AGAIN / resolver failure, or no answer in time
    DOWNLOAD_TIMEOUT = "download_timeout"  # transient: retried by --retry-failed
    DOWNLOAD_TRANSIENT = "download_transient"  # transient: 408, 429, 5xx, connection reset, unreachable
    REFUSED_URL = "refused_url"  # egress guard: scheme, userinfo, host or port not allowed
    REFUSED_HOST = "refused_host"  # egress guard: host resolves to a private/loopback/... address
    REDIRECT_REFUSED = "redirect_refused"  # a redirect hop into a refused address or scheme
    DISALLOWED_BY_HEADER = "disallowed_by_header"  # X-Robots-Tag opt-out (noai, noimageai, ...)
    RESPONSE_TOO_LARGE = "response_too_large"
    RESPONSE_TOO_SMALL = "response_too_small"
    DECODE_FAILED = "decode_failed"  # img2dataset could not decode the bytes
    IMAGE_FILTERED = "image_filtered"  # img2dataset's size/area/aspect filters
    DOWNLOAD_MISSING = "download_missing"  # img2dataset produced no row for the input
    # validity
    EMPTY_IMAGE = "empty_image"  # zero bytes
    UNREADABLE_IMAGE = "unreadable_image"  # no known image format (HTML error page, garbage)
    TRUNCATED_IMAGE = "truncated_image"
    CORRUPT_IMAGE = "corrupt_image"  # header parses, pixel data does not decode
    TOO_MANY_PIXELS = "too_many_pixels"  # over the pixel limit (decompression bomb)
    TOO_SMALL = "too_small"  # a side under the configured minimum
    # dedup
    URL_DUPLICATE = "url_duplicate"
    CONTENT_DUPLICATE = "content_duplicate"
    NEAR_DUPLICATE = "near_duplicate"
    SEMANTIC_DUPLICATE = "semantic_duplicate"  # image embeddings within the cosine threshold (k-NN)
    # outlier
    OUTLIER_VLM = "outlier_vlm"  # s_vlm under the pooled quantile
    OUTLIER_RS = "outlier_rs"  # c_rs (RS detector) under the pooled quantile
    OUTLIER_BOTH = "outlier_both"
    OUTLIER_UNSCORED = "outlier_unscored"  # could not be scored (undecodable, missing from its tar)


def make_uid(source: str, key: str) -> str:
    """Return the stable uid for a row: ``<source>-<first 16 hex digits of sha1(key)>``."""
    digest = hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{source}-{digest}"

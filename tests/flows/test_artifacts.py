"""What a build's and an evaluation's artifacts say: short funnel headers that fit the page, and a caveat
line when a tiny or random-init model sits beside published numbers."""

from __future__ import annotations

from rs5m.config.evaluate import EvalConfig
from rs5m.lineage.store import FUNNEL_COLUMNS
from tasks.evaluate import caveat
from tasks.report import SHORT_HEADERS, short_rows


def test_funnel_artifact_headers_are_short() -> None:
    rows = [dict(zip(FUNNEL_COLUMNS, ["LAION400M", *[2_322_161_808] * 7], strict=True))]
    out = short_rows(rows)
    assert list(out[0]) == [SHORT_HEADERS[c] for c in FUNNEL_COLUMNS]
    chars = sum(max(len(k), len(str(v))) for k, v in out[0].items())
    assert chars <= 90, chars  # the long headers made it 150 characters: cut at 1,500 px in the UI


def _eval(**model: object) -> EvalConfig:
    return EvalConfig.model_validate({"model": model, "zeroshot": [{"name": "a", "root": "b"}]})


def test_caveat_beside_published_numbers() -> None:
    tiny = caveat(_eval(name="rs5m-tiny", checkpoint="run/final/model.pt"))
    assert tiny is not None and "not comparable with the published" in tiny and "tiny" in tiny
    assert "random-init" in (caveat(_eval(name="ViT-B-32")) or "")
    assert caveat(_eval(name="ViT-B-32", checkpoint="RS5M_ViT-B-32.pt")) is None
    assert caveat(_eval(name="ViT-B-32", pretrained="openai")) is None
    no_published = _eval(name="rs5m-tiny").model_copy(update={"compare_published": False})
    assert caveat(no_published) is None


def test_reuse_line_of_an_incremental_build() -> None:
    from tasks.build import reuse_message

    reused = {"ingest": 13, "keyword": 13, "download": 12, "validity": 12, "scores": 1}
    line = reuse_message(reused, 13, "sample")
    assert line.startswith("reused 13 of 13 partitions from sample (ingest 13, keyword 13, download 12")
    assert line.endswith("dedup decisions and outlier scores reused too")

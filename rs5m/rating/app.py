"""The rating web app (FastAPI): one stored sample, served to any number of raters on 127.0.0.1.

API (JSON unless noted; ``rater`` is 1..64 printable characters):
- ``GET /`` the page; ``GET /static/*`` its script and style.
- ``GET /api/session`` version, sample description, size, rubric and shortcuts.
- ``GET /api/progress?rater=R`` total, rated, broken, skipped and ``next_pos`` (None when done).
- ``GET /api/pairs/{pos}?rater=R`` one pair: uid, caption, provenance, image URL or the reason it
  has none (``image_error``), and the rater's current answer. In an audit, the filter's decision
  and the fields that reveal it are left out (blind rating).
- ``GET /api/images/{uid}`` the image bytes of a sampled uid (404 with the reason otherwise). The
  file is looked up from the stored sample; no path is ever taken from the client.
- ``POST /api/ratings`` ``{rater, uid, relevance, hallucination, fluency, comment?}``, scores
  integers 1..5 (else 422); ``POST /api/broken`` ``{rater, uid, reason}``; ``POST /api/skip``
  ``{rater, uid}``. Each returns the rater's progress. A uid outside the sample is a 404; a busy
  database (another process writing it) is a 503.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator
from starlette.middleware.trustedhost import TrustedHostMiddleware

from rs5m.rating import sessions
from rs5m.rating.images import ImageUnavailable, TarIndex, browser_image, check_image, read_image
from rs5m.rating.rubric import SCALE_MAX, SCALE_MIN, rubric_payload
from rs5m.rating.sampling import SampleSpec
from rs5m.rating.store import RatingStore, StoreBusy, get_rating, log_skip, save_rating

STATIC_DIR = Path(__file__).parent / "static"
RATER_PATTERN = r"^[^\x00-\x1f\x7f]+$"
Rater = Annotated[str, Query(min_length=1, max_length=64, pattern=RATER_PATTERN)]
Score = Annotated[StrictInt, Field(ge=SCALE_MIN, le=SCALE_MAX)]
# Fields that give away a filter's decision; an audit hides them so raters judge blind.
DECISION_FIELDS = frozenset(
    {"keep_validity", "keep_dedup", "keep_outlier", "invalid_reason", "dup_reason", "dup_keeper_uid"}
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    rater: str = Field(min_length=1, max_length=64, pattern=RATER_PATTERN)
    uid: str = Field(min_length=1, max_length=200)


class RatingIn(_Body):
    """One answer: three integer scores in 1..5 and an optional comment."""

    relevance: Score
    hallucination: Score
    fluency: Score
    comment: str | None = Field(default=None, max_length=2000)

    @field_validator("comment")
    @classmethod
    def _empty_is_none(cls, v: str | None) -> str | None:
        return v or None


class BrokenIn(_Body):
    """A broken mark and its reason (e.g. the image is missing)."""

    reason: str = Field(min_length=1, max_length=500)


class SkipIn(_Body):
    """Skip a pair for now."""


def create_app(
    store: RatingStore, spec: SampleSpec, version_dir: Path, items: list[dict[str, Any]]
) -> FastAPI:
    """The app for one stored sample (``items`` from ``sessions.ensure_sample``).

    ``store`` stays the caller's to close.
    """
    app = FastAPI(title="rs5m pair rating", docs_url=None, redoc_url=None, openapi_url=None)
    # Only local host names: a page elsewhere cannot reach the app through DNS rebinding.
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "testserver"])
    by_uid = {it["uid"]: it for it in items}
    tars = TarIndex()

    @app.exception_handler(StoreBusy)
    async def _busy(_: Request, exc: StoreBusy) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    def rater_of(raw: str) -> str:
        rater = raw.strip()
        if not rater:
            raise HTTPException(422, "rater name is empty")
        return rater

    def item_of(uid: str) -> dict[str, Any]:
        if uid not in by_uid:
            raise HTTPException(404, f"uid {uid!r} is not in this sample")
        return by_uid[uid]

    async def progress_of(rater: str) -> dict[str, Any]:
        return await store.acall(sessions.progress, spec.sample_id, spec.version, rater)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/api/session")
    def session() -> dict[str, Any]:
        return {
            "version": spec.version,
            "subset": spec.subset,
            "source": spec.source,
            "audit": spec.audit,
            "seed": spec.seed,
            "sample_id": spec.sample_id,
            "description": spec.describe(),
            "total": len(items),
            "rubric": rubric_payload(),
        }

    @app.get("/api/progress")
    async def get_progress(rater: Rater) -> dict[str, Any]:
        return await progress_of(rater_of(rater))

    @app.get("/api/pairs/{pos}")
    async def get_pair(pos: int, rater: Rater) -> dict[str, Any]:
        if not 0 <= pos < len(items):
            raise HTTPException(404, f"no pair at position {pos} (the sample has {len(items)})")
        it = items[pos]
        error = check_image(version_dir, it["image_kind"], it["image_ref"], it["image_key"], tars)
        answer = await store.acall(get_rating, spec.version, it["uid"], rater_of(rater))
        info = {k: v for k, v in it["info"].items() if not (spec.audit and k in DECISION_FIELDS)}
        return {
            **{k: it[k] for k in ("pos", "uid", "subset", "source", "stage", "caption")},
            "decision": None if spec.audit else it["decision"],
            "info": info,
            "total": len(items),
            "image_url": None if error else f"/api/images/{it['uid']}",
            "image_error": error,
            "rating": answer,
        }

    @app.get("/api/images/{uid}")
    def get_image(uid: str) -> Response:
        it = item_of(uid)
        try:
            raw = read_image(version_dir, it["image_kind"], it["image_ref"], it["image_key"], tars)
            data, media = browser_image(raw)
        except ImageUnavailable as exc:
            raise HTTPException(404, str(exc)) from exc
        return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=3600"})

    @app.post("/api/ratings")
    async def post_rating(body: RatingIn) -> dict[str, Any]:
        item_of(body.uid)
        scores = {"relevance": body.relevance, "hallucination": body.hallucination, "fluency": body.fluency}
        await store.acall(save_rating, spec.version, body.uid, body.rater, scores, body.comment)
        return await progress_of(body.rater)

    @app.post("/api/broken")
    async def post_broken(body: BrokenIn) -> dict[str, Any]:
        item_of(body.uid)
        await store.acall(save_rating, spec.version, body.uid, body.rater, None, None, body.reason)
        return await progress_of(body.rater)

    @app.post("/api/skip")
    async def post_skip(body: SkipIn) -> dict[str, Any]:
        item_of(body.uid)
        await store.acall(log_skip, spec.version, body.uid, body.rater)
        return await progress_of(body.rater)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app

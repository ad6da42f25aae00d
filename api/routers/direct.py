"""Direct uploads (not tus): the dock PUTs parts straight to S3 on presigned URLs.

Routes parse, call one service of :mod:`archive.ingest.direct`, and answer. See that module for
the protocol and docs/architecture.md (Ingest) for where it sits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import ClientAddr, CurrentUser, DispatcherDep, SessionDep, StoreDep
from archive.config import get_settings
from archive.i18n import _
from archive.ingest import direct
from archive.ingest.errors import Locked
from archive.ingest.lock import RedisUploadLocks

router = APIRouter(prefix="/api/v1/uploads", tags=["uploads"])


class PartPublic(BaseModel):
    number: int = Field(ge=1, le=10000)
    size: int = Field(ge=0)
    etag: str = Field(min_length=1, max_length=128)


class ProgressPublic(BaseModel):
    id: str
    state: str
    length: int
    part_size: int
    part_count: int
    offset: int
    acknowledged_bytes: int
    parts: list[PartPublic]
    media_id: str | None


class UrlsRequest(BaseModel):
    parts: list[int] = Field(min_length=1, max_length=1000)


class GrantPublic(BaseModel):
    number: int
    size: int
    url: str


class UrlsPublic(BaseModel):
    part_size: int
    expires_at: datetime
    parts: list[GrantPublic]
    # Send these headers with every PUT (SSE-C: this object's own key; empty when not encrypted).
    headers: dict[str, str] = {}


class ReportRequest(BaseModel):
    parts: list[PartPublic] = Field(min_length=1, max_length=1000)


class CompleteRequest(BaseModel):
    sha256: str | None = Field(default=None, max_length=64)


class CompletePublic(BaseModel):
    upload_id: str
    media_id: str
    media_state: str


def _public(p: direct.UploadProgress) -> ProgressPublic:
    return ProgressPublic(
        id=p.upload_id,
        state=p.state.value,
        length=p.length,
        part_size=p.part_size,
        part_count=p.part_count,
        offset=p.offset,
        acknowledged_bytes=p.acknowledged_bytes,
        parts=[PartPublic(number=x.number, size=x.size, etag=x.etag) for x in p.parts],
        media_id=p.media_id,
    )


def _not_during_patch(request: Request, upload_id: str) -> None:
    # A tus PATCH writing the same upload holds its lock (archive.ingest.patch).
    if RedisUploadLocks(request.app.state.redis, get_settings().upload_lock_ttl_s).held(upload_id):
        raise Locked(_("a tus PATCH is writing to this upload; retry after a few seconds"))


@router.get("/{upload_id}/parts", response_model=ProgressPublic)
def parts(upload_id: str, session: SessionDep, user: CurrentUser) -> ProgressPublic:
    """The parts the archive has acknowledged (a resuming dock sends only the others)."""
    return _public(direct.progress(session, user, upload_id))


@router.post("/{upload_id}/parts/urls", response_model=UrlsPublic)
def part_urls(
    upload_id: str, body: UrlsRequest, session: SessionDep, user: CurrentUser, store: StoreDep
) -> UrlsPublic:
    """Presigned S3 URLs, one per part, short-lived."""
    s = get_settings()
    g = direct.grant_parts(
        session,
        store,
        user,
        upload_id,
        body.parts,
        ttl=timedelta(seconds=s.direct_part_url_ttl_s),
        max_parts=s.direct_max_urls_per_request,
    )
    return UrlsPublic(
        part_size=g.part_size,
        expires_at=g.expires_at,
        parts=[GrantPublic(number=x.number, size=x.size, url=x.url) for x in g.parts],
        headers=g.headers,
    )


@router.post("/{upload_id}/parts", response_model=ProgressPublic)
def report(
    upload_id: str,
    body: ReportRequest,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    store: StoreDep,
) -> ProgressPublic:
    """Parts the dock has PUT; each counts once S3 lists it with that size and ETag."""
    _not_during_patch(request, upload_id)
    reported = [direct.ReportedPart(p.number, p.size, p.etag) for p in body.parts]
    return _public(direct.report_parts(session, store, user, upload_id, reported))


@router.post(
    "/{upload_id}/complete",
    response_model=CompletePublic,
    responses={409: {"description": "parts to send again (resend) or not yet acknowledged"}},
)
def complete(
    upload_id: str,
    body: CompleteRequest,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    store: StoreDep,
    addr: ClientAddr,
    dispatcher: DispatcherDep,
) -> CompletePublic | JSONResponse:
    """Complete the upload from its acknowledged parts; the item then awaits verification."""
    _not_during_patch(request, upload_id)
    media = direct.complete(session, store, user, upload_id, body.sha256, addr, dispatcher)
    if isinstance(media, direct.Reopened):
        # Not an exception: the un-acknowledged parts must be committed with the answer.
        return JSONResponse(
            status_code=409,
            content={
                "detail": _("parts changed in storage after they were reported; send them again: {p}").format(
                    p="; ".join(media.problems)
                ),
                "resend": media.parts,
            },
        )
    return CompletePublic(upload_id=upload_id, media_id=media.id, media_state=media.state.value)

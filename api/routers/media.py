"""Media items: list, details, original/proxy/poster bytes (with HTTP Range), signed manifest."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel

from api.deps import ClientAddr, CurrentUser, SessionDep, StoreDep
from api.openapi import binary, header
from api.ranges import parse_range
from api.routers import restricted as restricted_routes
from api.viewsession import Viewer
from archive.accounts.models import User
from archive.config import get_settings
from archive.copyout import services as copyouts
from archive.localtime import LocalDateTime
from archive.media import services as media
from archive.media.models import DerivativeKind, MediaPublic, MediaState
from archive.storage import ObjectStore

# Restricted items (issue 13): every /{media_id} route passes the gate first.
router = APIRouter(
    prefix="/api/v1/media", tags=["media"], dependencies=[Depends(restricted_routes.media_gate)]
)


class MediaList(BaseModel):
    items: list[MediaPublic]
    total: int


@router.get("", response_model=MediaList)
def list_media(
    session: SessionDep,
    user: CurrentUser,
    addr: ClientAddr,
    officer: str | None = None,
    device: str | None = None,
    sha256: Annotated[str | None, Query(pattern="^[0-9a-fA-F]{64}$")] = None,
    state: MediaState | None = None,
    linked: bool | None = None,
    since: LocalDateTime | None = None,
    until: LocalDateTime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    purpose: Annotated[str | None, Query(max_length=2000)] = None,
) -> MediaList:
    """``linked``: only media linked (or not linked) to some case; ``since``/``until``: the device's
    recording time (``recorded_at``)."""
    where = media.MediaFilter(officer, device, sha256, state, linked, since, until)
    items, total = media.list_media(
        session, user, where, limit=limit, offset=offset, purpose=purpose, addr=addr
    )
    return MediaList(items=items, total=total)


@router.get("/{media_id}", response_model=MediaPublic)
def get_media(media_id: str, session: SessionDep, user: CurrentUser, addr: ClientAddr) -> MediaPublic:
    return media.view(session, user, media_id, client_addr=addr)


def _stream(store: ObjectStore, bucket: str, key: str, start: int, length: int) -> Iterator[bytes]:
    with store.open_stream(bucket, key, start, length) as chunks:
        yield from chunks


def _serve(
    request: Request,
    session: SessionDep,
    store: ObjectStore,
    user: User,
    readable: media.Readable,
    addr: str,
    case: str | None,
) -> StreamingResponse:
    size = readable.size
    rng = parse_range(request.headers.get("range"), size)
    start, end = rng if rng else (0, size - 1)
    length = end - start + 1
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(length),
        "Cache-Control": "private, no-store",
        # An original is the uploader's bytes with the uploader's type: never rendered by the
        # browser on this origin (an "original" that is HTML would run as the archive). Review
        # copies (proxies, posters) are ours and play inline in the review page.
        "Content-Disposition": (
            f'{"attachment" if readable.what == "original" else "inline"}; filename="{readable.filename}"'
        ),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    status = 200
    if rng:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    # The access is on record before the first byte leaves: the request's unit of work commits
    # before the response starts (api.deps.SessionDep, scope="function").
    media.record_read(session, user, readable, rng, case=case, client_addr=addr)
    return StreamingResponse(
        _stream(store, readable.bucket, readable.key, start, length),
        status_code=status,
        media_type=readable.content_type,
        headers=headers,
    )


_SERVED = {
    "Content-Length": header("Bytes in this answer", required=True, type_="integer"),
    "Content-Disposition": header("`attachment` for originals, `inline` for review copies", required=True),
    "Cache-Control": header("`private, no-store`", required=True),
}


# ``via=storage`` without encryption at rest: a redirect to a presigned URL for this one object.
_TO_STORAGE: dict[int | str, dict[str, Any]] = {
    307: {
        "description": "via=storage: read the bytes from storage on this presigned URL (expires in minutes)",
        "headers": {"Location": header("The presigned URL", required=True)},
    }
}


@router.get(
    "/{media_id}/original",
    response_class=StreamingResponse,
    responses=binary(
        "*/*", description="The original's bytes, with the uploader's type", ranges=True, headers=_SERVED
    ),
)
def original(
    media_id: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    store: StoreDep,
    addr: ClientAddr,
    copyout: int | None = None,
) -> StreamingResponse:
    """The original's bytes, for use outside the archive: needs an approved copy-out request
    (``copyout=<id>``, 调取审批) unless the operator switched approval off."""
    readable = media.original(session, store, user, media_id)
    copyouts.approve_download(session, user, readable.item.id, copyout, addr=addr)
    return _serve(request, session, store, user, readable, addr, None)


@router.get(
    "/{media_id}/proxy",
    response_class=StreamingResponse,
    responses={
        **binary(
            "video/mp4",
            "audio/mp4",
            "image/jpeg",
            description="The review copy",
            ranges=True,
            headers=_SERVED,
        ),
        **_TO_STORAGE,
    },
)
def proxy(
    media_id: str,
    request: Request,
    session: SessionDep,
    user: Viewer,
    store: StoreDep,
    addr: ClientAddr,
    case: Annotated[str | None, Query(max_length=36)] = None,
    via: Annotated[Literal["api", "storage"], Query()] = "api",
) -> Response:
    """The browser-playable review copy (MP4, M4A for audio, JPEG for photos), with HTTP Range.
    Takes the bearer token or the review page's streaming cookie. ``via=storage``: a redirect to a
    presigned S3 URL for this object alone, valid ``stream_url_ttl_s`` (the review page uses it, so
    bytes go from storage to the browser at storage speed); the access is logged either way. With
    encryption at rest on (SSE-C objects, which a browser cannot read on a URL) ``via=storage`` is
    served through the API like ``via=api``."""
    readable = media.derivative(session, store, user, media_id, DerivativeKind.PROXY)
    if via == "storage" and get_settings().browsers_stream_from_storage():
        return _redirect(session, store, user, readable, addr, case)
    return _serve(request, session, store, user, readable, addr, case)


def _redirect(
    session: SessionDep, store: ObjectStore, user: User, readable: media.Readable, addr: str, case: str | None
) -> RedirectResponse:
    ttl = timedelta(seconds=get_settings().stream_url_ttl_s)
    url = media.storage_url(session, store, user, readable, ttl, case=case, client_addr=addr)
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})


@router.get(
    "/{media_id}/poster",
    response_class=StreamingResponse,
    responses={
        **binary("image/jpeg", description="A still frame", ranges=True, headers=_SERVED),
        **_TO_STORAGE,
    },
)
def poster(
    media_id: str,
    request: Request,
    session: SessionDep,
    user: Viewer,
    store: StoreDep,
    addr: ClientAddr,
    case: Annotated[str | None, Query(max_length=36)] = None,
    via: Annotated[Literal["api", "storage"], Query()] = "api",
) -> Response:
    """A still frame (JPEG) for lists and players, with HTTP Range. Bearer token or streaming cookie.
    ``via=storage`` as for the proxy."""
    readable = media.derivative(session, store, user, media_id, DerivativeKind.POSTER)
    if via == "storage" and get_settings().browsers_stream_from_storage():
        return _redirect(session, store, user, readable, addr, case)
    return _serve(request, session, store, user, readable, addr, case)


class ManifestOut(BaseModel):
    manifest: dict[str, Any]
    signature: str
    key_id: str


@router.get("/{media_id}/manifest", response_model=ManifestOut)
def manifest(media_id: str, session: SessionDep, user: CurrentUser, addr: ClientAddr) -> ManifestOut:
    m = media.manifest(session, user, media_id, client_addr=addr)
    return ManifestOut(manifest=m.manifest, signature=m.signature, key_id=m.key_id)

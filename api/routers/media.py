"""Media items: list, details, original/proxy/poster bytes (with HTTP Range), signed manifest."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlmodel import Session, col, select

from api.deps import ClientAddr, CurrentUser, SessionDep, StoreDep
from api.ranges import parse_range
from api.viewsession import Viewer
from archive import events
from archive.access import actor
from archive.cases import services as cases
from archive.errors import Concealed, NotFound
from archive.models import (
    Derivative,
    DerivativeKind,
    DerivativePublic,
    Manifest,
    Media,
    MediaPublic,
    MediaState,
    User,
)
from archive.storage import ObjectStore

router = APIRouter(prefix="/api/v1/media", tags=["media"])

# Officers see their own recordings; reviewers what is linked to the cases assigned to them;
# auditors, records managers and admins everything (archive.cases.services.visible_media_clause).


def _get(session: Session, user: User, media_id: str) -> Media:
    item = session.get(Media, media_id)
    if item is None:
        raise NotFound(f"no media {media_id}")
    if not cases.media_visible(session, user, item):
        raise Concealed(f"no media {media_id}")  # same answer as above; logged as access.denied
    return item


def _public(session: Session, item: Media) -> MediaPublic:
    ders = session.exec(select(Derivative).where(Derivative.media_id == item.id)).all()
    return MediaPublic.model_validate(
        {**item.model_dump(), "derivatives": [DerivativePublic.model_validate(d.model_dump()) for d in ders]}
    )


class MediaList(BaseModel):
    items: list[MediaPublic]
    total: int


@router.get("", response_model=MediaList)
def list_media(
    session: SessionDep,
    user: CurrentUser,
    officer: str | None = None,
    device: str | None = None,
    sha256: Annotated[str | None, Query(pattern="^[0-9a-fA-F]{64}$")] = None,
    state: MediaState | None = None,
    linked: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> MediaList:
    """``linked``: only media linked (or not linked) to some case; ``since``/``until``: the device's
    recording time (``recorded_at``)."""
    q = select(Media).where(cases.visible_media_clause(user))
    if linked is not None:
        q = q.where(cases.linked_clause(linked))
    if since:
        q = q.where(col(Media.recorded_at) >= since)
    if until:
        q = q.where(col(Media.recorded_at) <= until)
    if officer:
        q = q.where(Media.officer_badge == officer)
    if device:
        q = q.where(Media.device_serial == device)
    if sha256:
        q = q.where(Media.sha256 == sha256.lower())
    if state:
        q = q.where(Media.state == state)
    rows = list(
        session.exec(q.order_by(col(Media.received_at).desc(), col(Media.id)).offset(offset).limit(limit))
    )
    total = len(list(session.exec(q)))
    return MediaList(items=[_public(session, m) for m in rows], total=total)


@router.get("/{media_id}", response_model=MediaPublic)
def get_media(media_id: str, session: SessionDep, user: CurrentUser, addr: ClientAddr) -> MediaPublic:
    item = _get(session, user, media_id)
    events.record(
        session,
        actor=actor(user),
        action="media.view",
        subject_type="media",
        subject_id=item.id,
        client_addr=addr,
    )
    return _public(session, item)


def _stream(store: ObjectStore, bucket: str, key: str, start: int, length: int) -> Iterator[bytes]:
    with store.open_stream(bucket, key, start, length) as chunks:
        yield from chunks


def _serve(
    request: Request,
    session: Session,
    store: ObjectStore,
    user: User,
    addr: str,
    item: Media,
    bucket: str,
    key: str,
    size: int,
    content_type: str,
    what: str,
    filename: str,
    case: str | None = None,
) -> StreamingResponse:
    rng = parse_range(request.headers.get("range"), size)
    start, end = rng if rng else (0, size - 1)
    length = end - start + 1
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(length),
        "Cache-Control": "private, no-store",
        "Content-Disposition": f'inline; filename="{filename}"',
    }
    status = 200
    if rng:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    details: dict[str, Any] = {"what": what, "range": [start, end] if rng else None}
    if case:
        details["case"] = case[:36]  # the case the review page was showing
    events.record(
        session,
        actor=actor(user),
        action=f"media.{'download' if what == 'original' else 'stream'}",
        subject_type="media",
        subject_id=item.id,
        client_addr=addr,
        details=details,
    )
    # The access is on record before the first byte leaves: the request's unit of work commits
    # before the response starts (api.deps.SessionDep, scope="function").
    return StreamingResponse(
        _stream(store, bucket, key, start, length),
        status_code=status,
        media_type=content_type,
        headers=headers,
    )


_ASCII_SAFE = str.maketrans(dict.fromkeys('"\\\r\n', "_"))


def _safe_name(name: str) -> str:
    return name.encode("ascii", "replace").decode("ascii").translate(_ASCII_SAFE)


@router.get("/{media_id}/original")
def original(
    media_id: str, request: Request, session: SessionDep, user: CurrentUser, store: StoreDep, addr: ClientAddr
) -> StreamingResponse:
    item = _get(session, user, media_id)
    if item.state in {MediaState.DUPLICATE, MediaState.RECEIVED}:
        raise NotFound(f"media {media_id} has no archived original of its own (state {item.state})")
    return _serve(
        request,
        session,
        store,
        user,
        addr,
        item,
        store.originals,
        item.object_key,
        item.size,
        item.content_type,
        "original",
        _safe_name(item.file_name),
    )


def _derivative(session: Session, item: Media, kind: DerivativeKind) -> Derivative:
    d = session.exec(
        select(Derivative).where(Derivative.media_id == item.id, Derivative.kind == kind)
    ).first()
    if d is None:
        reason = f": {item.state_reason}" if item.state_reason else f" (state {item.state})"
        raise NotFound(f"media {item.id} has no {kind}{reason}")
    return d


def _serve_derivative(
    kind: DerivativeKind,
    media_id: str,
    request: Request,
    session: Session,
    user: User,
    store: ObjectStore,
    addr: str,
    case: str | None,
) -> StreamingResponse:
    item = _get(session, user, media_id)
    d = _derivative(session, item, kind)
    name = f"{item.id}-{kind}{PurePosixPath(d.object_key).suffix}"
    return _serve(
        request,
        session,
        store,
        user,
        addr,
        item,
        store.derived,
        d.object_key,
        d.size,
        d.content_type,
        kind,
        name,
        case,
    )


@router.get("/{media_id}/proxy")
def proxy(
    media_id: str,
    request: Request,
    session: SessionDep,
    user: Viewer,
    store: StoreDep,
    addr: ClientAddr,
    case: Annotated[str | None, Query(max_length=36)] = None,
) -> StreamingResponse:
    """The browser-playable review copy (MP4, M4A for audio, JPEG for photos), with HTTP Range.
    Takes the bearer token or the review page's streaming cookie."""
    return _serve_derivative(DerivativeKind.PROXY, media_id, request, session, user, store, addr, case)


@router.get("/{media_id}/poster")
def poster(
    media_id: str,
    request: Request,
    session: SessionDep,
    user: Viewer,
    store: StoreDep,
    addr: ClientAddr,
    case: Annotated[str | None, Query(max_length=36)] = None,
) -> StreamingResponse:
    """A still frame (JPEG) for lists and players, with HTTP Range. Bearer token or streaming cookie."""
    return _serve_derivative(DerivativeKind.POSTER, media_id, request, session, user, store, addr, case)


class ManifestOut(BaseModel):
    manifest: dict[str, Any]
    signature: str
    key_id: str


@router.get("/{media_id}/manifest", response_model=ManifestOut)
def manifest(media_id: str, session: SessionDep, user: CurrentUser, addr: ClientAddr) -> ManifestOut:
    item = _get(session, user, media_id)
    m = session.exec(
        select(Manifest).where(Manifest.media_id == item.id).order_by(col(Manifest.version).desc())
    ).first()
    if m is None:
        raise NotFound(f"media {media_id} has no signed manifest yet (state {item.state})")
    events.record(
        session,
        actor=actor(user),
        action="media.manifest",
        subject_type="media",
        subject_id=item.id,
        client_addr=addr,
    )
    return ManifestOut(manifest=m.body, signature=m.signature, key_id=m.key_id)

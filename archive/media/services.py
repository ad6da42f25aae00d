"""Media services: list, get, the bytes to serve, the signed manifest; every read logged.

Who sees what: officers their own recordings; reviewers what is linked to the cases assigned to
them; auditors, records managers and admins everything (``archive.cases.services.visible_media_clause``).
An item a user may not see is answered as if it did not exist (404), and logged as refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from sqlmodel import Session, col, select

from archive import events
from archive.access import actor
from archive.accounts.models import DeviceFlag, User
from archive.cases import services as cases
from archive.clock import checked_utc
from archive.errors import Concealed, NotFound
from archive.i18n import _
from archive.media.models import (
    Derivative,
    DerivativeKind,
    DerivativePublic,
    Manifest,
    Media,
    MediaPublic,
    MediaState,
    derivative_bucket,
)
from archive.restricted import services as restricted
from archive.restricted.models import SubjectKind
from archive.storage import ObjectStore


def get(session: Session, user: User, media_id: str) -> Media:
    item = session.get(Media, media_id)
    if item is None:
        raise NotFound(_("no media {media_id}").format(media_id=media_id))
    if not cases.media_visible(session, user, item):
        raise Concealed(
            _("no media {media_id}").format(media_id=media_id)
        )  # same answer as above; logged as access.denied
    return item


def public(session: Session, item: Media) -> MediaPublic:
    ders = session.exec(select(Derivative).where(Derivative.media_id == item.id)).all()
    flag = session.get(DeviceFlag, item.id)
    return MediaPublic.model_validate(
        {
            **item.model_dump(),
            "derivatives": [DerivativePublic.model_validate(d.model_dump()) for d in ders],
            "device_flag": str(flag.reason) if flag is not None and flag.resolved_at is None else None,
        }
    )


@dataclass(frozen=True)
class MediaFilter:
    """``linked``: only media linked (or not linked) to some case; ``since``/``until``: the device's
    recording time (``recorded_at``)."""

    officer: str | None = None
    device: str | None = None
    sha256: str | None = None
    state: MediaState | None = None
    linked: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_media(
    session: Session,
    user: User,
    where: MediaFilter,
    *,
    limit: int = 100,
    offset: int = 0,
    purpose: str | None = None,
    addr: str = "",
) -> tuple[list[MediaPublic], int]:
    """The items ``user`` may see that match, newest first, and how many match in all. A restricted
    (marked) item is absent, except for a reader granted it who states ``purpose`` (each such item
    listed is a ``restricted.read`` with it; issue 13)."""
    listed = restricted.listing_clause(user, SubjectKind.MEDIA, Media.id, purpose)
    q = select(Media).where(cases.visible_media_clause(user), listed)
    if where.linked is not None:
        q = q.where(cases.linked_clause(where.linked))
    if where.since:
        q = q.where(col(Media.recorded_at) >= checked_utc(where.since, "since"))
    if where.until:
        q = q.where(col(Media.recorded_at) <= checked_utc(where.until, "until"))
    if where.officer:
        q = q.where(Media.officer_badge == where.officer)
    if where.device:
        q = q.where(Media.device_serial == where.device)
    if where.sha256:
        q = q.where(Media.sha256 == where.sha256.lower())
    if where.state:
        q = q.where(Media.state == where.state)
    rows = list(
        session.exec(q.order_by(col(Media.received_at).desc(), col(Media.id)).offset(offset).limit(limit))
    )
    total = len(list(session.exec(q)))
    restricted.log_listed(
        session, user, SubjectKind.MEDIA, [m.id for m in rows], purpose, via="media", addr=addr
    )
    return [public(session, m) for m in rows], total


def view(session: Session, user: User, media_id: str, *, client_addr: str = "") -> MediaPublic:
    item = get(session, user, media_id)
    _log_read(session, user, item, "media.view", client_addr)
    return public(session, item)


@dataclass(frozen=True)
class Readable:
    """Bytes a user may read: where they lie (never sent to the client), their size and type."""

    item: Media
    what: str  # "original", "proxy", "poster"
    bucket: str
    key: str
    size: int
    content_type: str
    filename: str  # ASCII, safe inside a Content-Disposition header


_ASCII_SAFE = str.maketrans(dict.fromkeys('"\\\r\n', "_"))


def _safe_name(name: str) -> str:
    return name.encode("ascii", "replace").decode("ascii").translate(_ASCII_SAFE)


def original(session: Session, store: ObjectStore, user: User, media_id: str) -> Readable:
    item = get(session, user, media_id)
    if item.state in {MediaState.DUPLICATE, MediaState.RECEIVED}:
        raise NotFound(
            _("media {media_id} has no archived original of its own (state {state})").format(
                media_id=media_id, state=item.state
            )
        )
    return Readable(
        item,
        "original",
        store.originals,
        item.object_key,
        item.size,
        item.content_type,
        _safe_name(item.file_name),
    )


def derivative(
    session: Session, store: ObjectStore, user: User, media_id: str, kind: DerivativeKind
) -> Readable:
    item = get(session, user, media_id)
    d = session.exec(
        select(Derivative).where(Derivative.media_id == item.id, Derivative.kind == kind)
    ).first()
    if d is None:
        reason = f": {item.state_reason}" if item.state_reason else f" (state {item.state})"
        raise NotFound(_("media {id} has no {kind}{reason}").format(id=item.id, kind=kind, reason=reason))
    name = f"{item.id}-{kind}{PurePosixPath(d.object_key).suffix}"
    bucket = derivative_bucket(d, store.originals, store.derived)
    return Readable(item, kind, bucket, d.object_key, d.size, d.content_type, name)


def _log_read(
    session: Session,
    user: User,
    item: Media,
    action: str,
    client_addr: str,
    details: dict[str, Any] | None = None,
) -> None:
    events.record(
        session,
        actor=actor(user),
        action=action,
        subject_type="media",
        subject_id=item.id,
        client_addr=client_addr,
        details=details,
    )


def record_read(
    session: Session,
    user: User,
    readable: Readable,
    byte_range: tuple[int, int] | None,
    *,
    case: str | None = None,
    client_addr: str = "",
    via: str | None = None,
) -> None:
    """A download (original) or a stream (proxy, poster), with the range asked for and the case the
    review page was showing. On record before the first byte leaves (the caller commits first).
    ``via="storage"``: the bytes go from S3 to the client on a presigned URL handed out for this access."""
    details: dict[str, Any] = {"what": readable.what, "range": list(byte_range) if byte_range else None}
    if via:
        details["via"] = via
    if case:
        # The log says through which case the item was watched: only a case the viewer may see that
        # links this item, else a viewer could write any case's id into the custody log (issue 10).
        try:
            shown = cases.get_case(session, user, case)
        except NotFound:
            shown = None
        if shown is None or cases.find_open_link(session, shown.id, readable.item.id) is None:
            raise NotFound(
                _("no case {case} linking media {media}").format(case=case[:36], media=readable.item.id)
            )
        details["case"] = shown.id
    action = f"media.{'download' if readable.what == 'original' else 'stream'}"
    _log_read(session, user, readable.item, action, client_addr, details)


@dataclass(frozen=True)
class ManifestAnswer:
    manifest: dict[str, Any]
    signature: str
    key_id: str


def manifest(session: Session, user: User, media_id: str, *, client_addr: str = "") -> ManifestAnswer:
    """The newest signed manifest of an item; the read is logged."""
    item = get(session, user, media_id)
    m = session.exec(
        select(Manifest).where(Manifest.media_id == item.id).order_by(col(Manifest.version).desc())
    ).first()
    if m is None:
        raise NotFound(
            _("media {media_id} has no signed manifest yet (state {state})").format(
                media_id=media_id, state=item.state
            )
        )
    _log_read(session, user, item, "media.manifest", client_addr)
    return ManifestAnswer(manifest=m.body, signature=m.signature, key_id=m.key_id)


def storage_url(
    session: Session,
    store: ObjectStore,
    user: User,
    readable: Readable,
    ttl: timedelta,
    *,
    case: str | None = None,
    client_addr: str = "",
) -> str:
    """A presigned URL for exactly this object, valid ``ttl``; the access is logged like a stream."""
    record_read(session, user, readable, None, case=case, client_addr=client_addr, via="storage")
    return store.presigned_get_public(
        readable.bucket, readable.key, ttl, readable.content_type, readable.filename
    )

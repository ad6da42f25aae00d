"""Links between cases and media (manual, automatic, carried to an original), and the one clock: a
recording's span on the corrected device clock, which decides the auto-link rule."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from archive import events, vocabulary
from archive.access import Permission, actor, authorize
from archive.accounts.models import Device, DeviceFlag, DeviceStatus, User
from archive.approvals import services as approvals
from archive.approvals.models import ApprovalKind, ApprovalRequest
from archive.cases.access import (
    ATTACHMENT_DEVICE,
    UNLINKABLE,
    get_case,
    log_change,
    media_visible,
    require_writer,
)
from archive.cases.errors import CaseClosed
from archive.cases.models import (
    Case,
    CaseMedia,
    CaseOfficer,
    CaseStatus,
    LinkPublic,
    LinkSource,
    RecordOfficer,
    TextRecord,
)
from archive.clock import Clock, as_utc, utcnow
from archive.errors import InvalidInput, NotFound
from archive.i18n import _
from archive.media.models import Media, MediaState
from archive.restricted import services as restricted
from archive.restricted.models import SubjectKind

# --------------------------------------------------------------------------- links


def find_open_link(session: Session, case_id: str, media_id: str) -> CaseMedia | None:
    return session.exec(
        select(CaseMedia).where(
            CaseMedia.case_id == case_id, CaseMedia.media_id == media_id, col(CaseMedia.unlinked_at).is_(None)
        )
    ).first()


def make_link(
    session: Session,
    who: str,
    case: Case,
    media_id: str,
    source: LinkSource,
    reason: str,
    record_id: str | None,
    addr: str,
    clock: Clock,
    *,
    pending: bool = False,
) -> CaseMedia:
    """``who``: the actor as the custody log names it (``user:NAME``, or the worker for links the rule
    makes when a recording is archived after the record was written). ``pending``: a link of the
    auto-link rule that grants nothing until confirmed (:func:`confirm_link`)."""
    link = CaseMedia(
        case_id=case.id,
        media_id=media_id,
        source=source,
        reason=reason,
        record_id=record_id,
        linked_by=who,
        linked_at=clock(),
        pending=pending,
    )
    session.add(link)
    session.flush()
    events.record(
        session,
        actor=who,
        action="case.link",
        subject_type="media",
        subject_id=media_id,
        client_addr=addr,
        details={
            "case": case.id,
            "source": source,
            "reason": reason,
            "record": record_id,
            **({"pending": True} if pending else {}),
        },
        clock=clock,
    )
    return link


def carry_links_to_original(
    session: Session, duplicate: Media, original: Media, *, who: str, clock: Clock
) -> int:
    """A linked item (a case attachment) turned out to be bytes already archived: its bytes are not
    kept twice, so each case it was linked to gets the original instead, with the reason saying
    why. The duplicate's own links stay as history. Returns the number of links made."""
    made = 0
    for link in session.exec(
        select(CaseMedia).where(CaseMedia.media_id == duplicate.id, col(CaseMedia.unlinked_at).is_(None))
    ).all():
        if find_open_link(session, link.case_id, original.id) is not None:
            continue
        case = session.get(Case, link.case_id)
        if case is None:
            continue
        make_link(
            session,
            who,
            case,
            original.id,
            link.source,
            f"same bytes as {duplicate.id}, linked by {link.linked_by}: {link.reason}"[:2000],
            link.record_id,
            "",
            clock,
            pending=link.pending,
        )
        made += 1
    return made


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidInput(_("a reason is required"))
    if len(reason) > 2000:
        raise InvalidInput(_("reason: at most 2000 characters"))
    return reason


def link_media(
    session: Session,
    user: User,
    case_id: str,
    media_id: str,
    reason: str,
    *,
    addr: str = "",
    clock: Clock = utcnow,
) -> CaseMedia:
    case = get_case(session, user, case_id)
    require_writer(session, user, case)
    reason = _reason(reason)
    item = session.get(Media, media_id)
    if item is None or not media_visible(session, user, item):
        raise NotFound(_("no media {media_id}").format(media_id=media_id))
    if item.state in UNLINKABLE:
        hint = f"; link the original {item.duplicate_of}" if item.duplicate_of else ""
        raise InvalidInput(
            _("media {media_id} is {state}, not an archived original{hint}").format(
                media_id=media_id, state=item.state, hint=hint
            )
        )
    existing = find_open_link(session, case.id, media_id)
    if existing is not None:
        return existing  # linking twice changes nothing and logs nothing
    return make_link(session, actor(user), case, media_id, LinkSource.MANUAL, reason, None, addr, clock)


def unlink_media(
    session: Session,
    user: User,
    case_id: str,
    media_id: str,
    reason: str,
    *,
    addr: str = "",
    clock: Clock = utcnow,
) -> ApprovalRequest:
    """Ask to unlink a media item from a case (issue 10, finding 4): whoever may write to the case
    asks, with a reason; a second person, a records manager or an administrator, approves it
    (``archive.approvals``) and only then is the link closed."""
    case = get_case(session, user, case_id)
    require_writer(session, user, case)
    reason = _reason(reason)
    link = find_open_link(session, case.id, media_id)
    if link is None:
        raise NotFound(
            _("media {media_id} is not linked to case {number}").format(media_id=media_id, number=case.number)
        )
    return approvals.request(
        session,
        user,
        ApprovalKind.CASE_UNLINK,
        "media",
        media_id,
        {"case_id": case.id, "media_id": media_id},
        reason,
        addr=addr,
        clock=clock,
    )


def _execute_unlink(
    session: Session,
    row: ApprovalRequest,
    requester: User,
    approver: User,
    deps: approvals.Deps,
    clock: Clock,
) -> dict[str, Any]:
    """Approved: close the link in the requester's name (the auto-link rule will not link it again)."""
    case = get_case(session, approver, str(row.payload["case_id"]))
    media_id = str(row.payload["media_id"])
    if case.status == CaseStatus.CLOSED:
        raise CaseClosed(_("case {case} is closed: reopen it first").format(case=case.number))
    link = find_open_link(session, case.id, media_id)
    if link is None:
        raise NotFound(
            _("media {media_id} is not linked to case {number}").format(media_id=media_id, number=case.number)
        )
    link.unlinked_at = clock()
    link.unlinked_by = actor(requester)
    link.unlink_reason = row.reason
    session.add(link)
    session.flush()
    events.record(
        session,
        actor=actor(requester),
        action="case.unlink",
        subject_type="media",
        subject_id=media_id,
        client_addr=deps.addr,
        clock=clock,
        details={
            "case": case.id,
            "reason": row.reason,
            "was": link.source,
            "approval": row.id,
            "approved_by": approver.name,
        },
    )
    return {"case": case.id, "media": media_id, "link": link.id}


approvals.register_handler(
    ApprovalKind.CASE_UNLINK, approvals.Handler(approve=Permission.APPROVE_UNLINK, execute=_execute_unlink)
)


def links(
    session: Session, user: User, case_id: str, *, include_closed: bool = False, purpose: str | None = None
) -> list[CaseMedia]:
    """A case's links; a marked recording's only for a reader granted it who states ``purpose``."""
    case = get_case(session, user, case_id)
    stmt = select(CaseMedia).where(
        CaseMedia.case_id == case.id,
        restricted.listing_clause(user, SubjectKind.MEDIA, CaseMedia.media_id, purpose),
    )
    if not include_closed:
        stmt = stmt.where(col(CaseMedia.unlinked_at).is_(None))
    return list(session.exec(stmt.order_by(col(CaseMedia.linked_at), col(CaseMedia.id))))


def link_public(link: CaseMedia) -> LinkPublic:
    return LinkPublic.model_validate(link.model_dump())


# --------------------------------------------------------------------------- one clock


def device_start(item: Media) -> tuple[datetime, str] | None:
    """When the recording began, on the device's clock, and where that was read: the container's
    own creation time (MP4 ``creation_time``, QuickTime creationdate, EXIF DateTimeOriginal), which
    the recorder writes when recording starts, when the probe found one; else the time the dock sent
    (the file's time on the recorder's file system, which many recorders set when the file is closed)."""
    created = (item.probe or {}).get("creation_time")
    if created:
        try:
            return as_utc(datetime.fromisoformat(str(created))), "metadata"
        except ValueError:
            pass
    if item.recorded_at is None:
        return None
    return as_utc(item.recorded_at), "file"


def corrected_span(item: Media) -> tuple[datetime, datetime] | None:
    """Start and end on the true clock: device time minus the device's offset (device minus true),
    end = start + probed duration. Unknown duration (not probed, a photo): a point in time."""
    found = device_start(item)
    if found is None:
        return None
    start = found[0] - timedelta(seconds=item.clock_offset_s)
    duration = (item.probe or {}).get("duration_s") or 0.0
    return start, start + timedelta(seconds=float(duration))


def correction_note(item: Media) -> str:
    """For people, in the request's language: how the device's clock was corrected, and how it is known."""
    off = item.clock_offset_s
    source = vocabulary.label("clock_source", item.clock_source)
    if off == 0:
        if item.clock_source != "assumed":
            return _("device clock: no offset ({source})").format(source=source)
        return _("device clock: offset unknown, assumed 0 ({source})").format(source=source)
    seconds = f"{abs(off):g}"
    if off > 0:
        return _("device clock {seconds} s fast ({source}); times shown corrected").format(
            seconds=seconds, source=source
        )
    return _("device clock {seconds} s slow ({source}); times shown corrected").format(
        seconds=seconds, source=source
    )


def overlaps(span: tuple[datetime, datetime], start: datetime, end: datetime, buffer_s: float) -> bool:
    """Inclusive on both edges: media ending exactly ``buffer_s`` before the window still links."""
    buf = timedelta(seconds=buffer_s)
    return span[0] <= end + buf and span[1] >= start - buf


def autolink(
    session: Session,
    user: User,
    case: Case,
    rec: TextRecord,
    *,
    buffer_s: float,
    addr: str = "",
    clock: Clock = utcnow,
) -> list[str]:
    """Link every media item recorded by the record's officers (their docked media, or media from
    devices assigned to them) that overlaps the record's window +- ``buffer_s`` on the corrected clock.

    Items a person unlinked from this case stay unlinked: the rule never overrides a human decision.
    There is no time prefilter in SQL on purpose: a device clock may be off by years (a reset recorder
    says 2000-01-01), so only the corrected time decides; the officer filter keeps the set small.
    """
    officers = sorted(set(rec.officers) & on_case(session, case.id))
    if not officers:
        return []
    devices = select(Device.serial).where(
        col(Device.officer_badge).in_(officers), Device.status == DeviceStatus.REGISTERED
    )
    candidates = session.exec(
        select(Media).where(
            or_(col(Media.officer_badge).in_(officers), col(Media.device_serial).in_(devices)),
            col(Media.recorded_at).is_not(None),
            col(Media.state).not_in(list(UNLINKABLE | {MediaState.DELETED})),
            # Issue 10, finding 3: a recording from a device its officer may not dock links nothing.
            col(Media.id).not_in(_device_flagged()),
        )
    ).all()
    start, end = as_utc(rec.occurred_from), as_utc(rec.occurred_to)
    hits = [m for m in candidates if (span := corrected_span(m)) and overlaps(span, start, end, buffer_s)]
    if not hits:
        return []
    skip = _blocked(session, case.id, [m.id for m in hits])
    made: list[str] = []
    for m in sorted(hits, key=lambda m: m.id):
        if m.id in skip:
            continue
        make_link(
            session,
            actor(user),
            case,
            m.id,
            LinkSource.AUTO,
            f"officer {m.officer_badge} recorded within {buffer_s:g} s of record {rec.record_id} "
            f"v{rec.version} (corrected clock)",
            rec.record_id,
            addr,
            clock,
            pending=not media_visible(session, user, m),
        )
        made.append(m.id)
    return made


def _blocked(session: Session, case_id: str, media_ids: Sequence[str]) -> set[str]:
    """Media the rule must not link to this case: linked already, or unlinked by a person."""
    existing = session.exec(
        select(CaseMedia).where(CaseMedia.case_id == case_id, col(CaseMedia.media_id).in_(list(media_ids)))
    ).all()
    return {ln.media_id for ln in existing if ln.unlinked_at is None or ln.unlinked_by is not None}


def _device_flagged() -> Any:
    """Media ids with an unresolved device flag (docked from a device the officer may not dock)."""
    return select(DeviceFlag.media_id).where(col(DeviceFlag.resolved_at).is_(None))


def autolink_media(
    session: Session,
    item: Media,
    *,
    buffer_s: float,
    who: str = events.SYSTEM_WORKER,
    clock: Clock = utcnow,
    pending: bool = False,
) -> list[str]:
    """The auto-link rule from the recording's side, for media archived after the record was written
    (officers dock at the end of a shift; records are often typed before that). Links ``item`` to
    every case with a record (latest version) naming the item's officer, or the officer its device is
    registered to, whose window +- ``buffer_s`` overlaps the item's corrected span. Returns case ids.
    ``pending``: every link it makes waits for confirmation (a device registered after the docking)."""
    if item.state in UNLINKABLE or item.state is MediaState.DELETED:
        return []
    flag = session.get(DeviceFlag, item.id)
    if flag is not None and flag.resolved_at is None:
        return []
    if item.device_serial == ATTACHMENT_DEVICE:
        # A scan's EXIF time is not a recording of the scene: attachments join cases by hand only.
        return []
    span = corrected_span(item)
    if span is None:
        return []
    badges = {item.officer_badge}
    device = session.get(Device, item.device_serial)
    if device is not None and device.officer_badge and device.status is DeviceStatus.REGISTERED:
        badges.add(device.officer_badge)
    named = (
        select(TextRecord.record_id)
        .join(RecordOfficer, col(RecordOfficer.record_row) == col(TextRecord.id))
        .where(col(RecordOfficer.badge).in_(sorted(badges)))
    )
    latest: dict[str, TextRecord] = {}
    for r in session.exec(select(TextRecord).where(col(TextRecord.record_id).in_(named))):
        if r.record_id not in latest or r.version > latest[r.record_id].version:
            latest[r.record_id] = r
    hits: dict[str, TextRecord] = {}
    for r in sorted(latest.values(), key=lambda r: (r.occurred_from, r.record_id)):
        if badges & set(r.officers) & on_case(session, r.case_id) and overlaps(
            span, as_utc(r.occurred_from), as_utc(r.occurred_to), buffer_s
        ):
            hits.setdefault(r.case_id, r)  # the earliest matching record of each case names the link
    made: list[str] = []
    for case_id, rec in sorted(hits.items()):
        if item.id in _blocked(session, case_id, [item.id]):
            continue
        case = session.get(Case, case_id)
        if case is None:
            continue
        # Confirmed only if the record's writer could already see the recording; else pending.
        writer = session.exec(select(User).where(User.name == rec.created_by)).first()
        make_link(
            session,
            who,
            case,
            item.id,
            LinkSource.AUTO,
            f"officer {item.officer_badge} recorded within {buffer_s:g} s of record {rec.record_id} "
            f"v{rec.version} (corrected clock; linked when the recording was archived)",
            rec.record_id,
            "",
            clock,
            pending=pending or writer is None or writer.disabled or not media_visible(session, writer, item),
        )
        made.append(case_id)
    return made


def read_links(
    session: Session,
    user: User,
    case_id: str,
    *,
    include_closed: bool = False,
    addr: str = "",
    purpose: str | None = None,
) -> list[LinkPublic]:
    """A case's links (open ones, or all), the read logged as ``case.links`` (and each restricted
    recording listed through a grant, with the stated ``purpose``)."""
    rows = links(session, user, case_id, include_closed=include_closed, purpose=purpose)
    log_change(session, user, "case.links", "case", case_id, addr, utcnow)
    restricted.log_listed(
        session, user, SubjectKind.MEDIA, [x.media_id for x in rows], purpose, via="links", addr=addr
    )
    return [link_public(x) for x in rows]


# --------------------------------------------------------------------------- pending links


def on_case(session: Session, case_id: str) -> set[str]:
    """The badges of the officers on a case: the auto-link rule links recordings of these only."""
    return set(session.exec(select(CaseOfficer.badge).where(CaseOfficer.case_id == case_id)))


def confirm_link(
    session: Session, user: User, case_id: str, media_id: str, *, addr: str = "", clock: Clock = utcnow
) -> CaseMedia:
    """A person who may see the media confirms a pending auto-link: from now on the case's reviewers
    see the recording through it. Logged as ``case.link.confirm``."""
    authorize(user, Permission.CASE_LINK_CONFIRM, _("confirm links"))
    case = get_case(session, user, case_id)
    link = find_open_link(session, case.id, media_id)
    item = session.get(Media, media_id)
    if link is None or not link.pending or item is None or not media_visible(session, user, item):
        raise NotFound(
            _("no pending link of media {media} in case {case}").format(media=media_id[:64], case=case.number)
        )
    link.pending = False
    link.confirmed_by = actor(user)
    link.confirmed_at = clock()
    session.add(link)
    session.flush()
    log_change(
        session,
        user,
        "case.link.confirm",
        "media",
        media_id,
        addr,
        clock,
        case=case.id,
        record=link.record_id,
    )
    return link

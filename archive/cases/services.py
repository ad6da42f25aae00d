"""Cases, text records, links and the case timeline.

Every change writes its custody event through :func:`archive.events.record` in the caller's
transaction, so a change and its log entry commit or vanish together. Services ``flush``; the unit
of work (the request) commits once. Reads that show evidence (a case, its timeline) are logged too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, false, func, or_, true
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, actor, authorize, can
from archive.accounts.models import Device, User
from archive.cases.errors import CaseNotFound, DuplicateCaseNumber, InvalidRecord
from archive.cases.models import (
    Case,
    CaseKind,
    CaseMedia,
    CasePublic,
    CaseReviewer,
    CaseStatus,
    DocumentKind,
    LinkPublic,
    LinkSource,
    RecordOfficer,
    RecordPublic,
    Stage,
    TextRecord,
    Timeline,
    TimelineMedia,
    TimelineRecord,
)
from archive.clock import Clock, as_utc, utcnow
from archive.errors import Forbidden, InvalidInput, NotFound
from archive.ingest import uploads
from archive.ingest.models import Upload, UploadState
from archive.media.models import Derivative, DerivativeKind, Media, MediaState

# Who sees what (issue 3, section 8) is said in archive.access: CASE_READ_ALL and MEDIA_READ_ALL
# (auditors read everything, they audit the archive as a whole, but change nothing), CASE_ADMIN
# (open cases, assign reviewers), and the need-to-know permissions below.
# Items that never became an archived original of their own: nothing to review or link.
UNLINKABLE = frozenset({MediaState.QUARANTINED, MediaState.DUPLICATE})

_BADGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MAX_OFFICERS = 50
MAX_ATTACHMENTS = 100


# --------------------------------------------------------------------------- visibility


def visible_cases_clause(user: User) -> ColumnElement[bool]:
    if can(user, Permission.CASE_READ_ALL):
        return true()
    if can(user, Permission.CASE_READ_ASSIGNED):
        return col(Case.id).in_(select(CaseReviewer.case_id).where(CaseReviewer.user_name == user.name))
    return false()  # officers work through the dock; cases are read by reviewers and the back office


def visible_media_clause(user: User) -> ColumnElement[bool]:
    """Officers see their own recordings; reviewers see what is linked to a case assigned to them;
    auditors, records managers and admins see everything, linked or not."""
    if can(user, Permission.MEDIA_READ_ALL):
        return true()
    if can(user, Permission.MEDIA_READ_OWN):
        return col(Media.officer_badge) == user.name
    if can(user, Permission.CASE_READ_ASSIGNED):
        linked = (
            select(CaseMedia.media_id)
            .join(CaseReviewer, col(CaseReviewer.case_id) == col(CaseMedia.case_id))
            .where(CaseReviewer.user_name == user.name, col(CaseMedia.unlinked_at).is_(None))
        )
        return col(Media.id).in_(linked)
    return false()


def media_visible(session: Session, user: User, item: Media) -> bool:
    if can(user, Permission.MEDIA_READ_ALL):
        return True
    if can(user, Permission.MEDIA_READ_OWN):
        return item.officer_badge == user.name
    return (
        session.exec(select(Media.id).where(Media.id == item.id, visible_media_clause(user))).first()
        is not None
    )


def linked_clause(linked: bool) -> ColumnElement[bool]:
    open_link = exists().where(col(CaseMedia.media_id) == col(Media.id), col(CaseMedia.unlinked_at).is_(None))
    return open_link if linked else ~open_link


def get_case(session: Session, user: User, case_id: str) -> Case:
    case = session.exec(select(Case).where(Case.id == case_id, visible_cases_clause(user))).first()
    if case is None:
        raise CaseNotFound(f"no case {case_id}")
    return case


def require_writer(session: Session, user: User, case: Case) -> None:
    """Admins, records managers and the reviewers assigned to the case add records and links."""
    if can(user, Permission.CASE_ADMIN):
        return
    if (
        can(user, Permission.CASE_WRITE_ASSIGNED)
        and session.get(CaseReviewer, (case.id, user.name)) is not None
    ):
        return
    raise Forbidden(f"role {user.role} may not change case {case.number}")


def _log(
    session: Session,
    user: User,
    action: str,
    subject_type: str,
    subject_id: str,
    addr: str,
    clock: Clock,
    **details: Any,
) -> None:
    events.record(
        session,
        actor=actor(user),
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        client_addr=addr,
        details=details,
        clock=clock,
    )


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class CaseInput:
    number: str
    title: str
    kind: CaseKind
    stage: Stage = Stage.FILING
    status: CaseStatus = CaseStatus.OPEN
    agency: str = "default"
    reviewers: Sequence[str] = ()


def _reviewers(session: Session, names: Iterable[str]) -> list[str]:
    out = sorted(set(names))
    for name in out:
        u = session.exec(select(User).where(User.name == name)).first()
        if u is None or not can(u, Permission.CASE_WRITE_ASSIGNED):
            raise InvalidInput(f"reviewer {name!r} is not a reviewer account")
    return out


def create_case(
    session: Session, user: User, data: CaseInput, *, addr: str = "", clock: Clock = utcnow
) -> Case:
    authorize(user, Permission.CASE_ADMIN, "open cases")
    number, title = data.number.strip(), data.title.strip()
    if not number or not title:
        raise InvalidInput("case number and title must not be empty")
    taken = session.exec(select(Case.id).where(Case.agency == data.agency, Case.number == number)).first()
    if taken:
        raise DuplicateCaseNumber(f"case number {number!r} already exists in agency {data.agency!r}")
    reviewers = _reviewers(session, data.reviewers)
    now = clock()
    case = Case(
        agency=data.agency,
        number=number,
        title=title,
        kind=data.kind,
        stage=data.stage,
        status=data.status,
        created_by=user.name,
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    try:
        # The unique constraint is the real guard: two clerks may race past the check above.
        with session.begin_nested():
            session.flush()
    except DBIntegrityError as exc:
        raise DuplicateCaseNumber(f"case number {number!r} already exists in agency {data.agency!r}") from exc
    for name in reviewers:
        session.add(CaseReviewer(case_id=case.id, user_name=name, assigned_by=user.name, assigned_at=now))
    session.flush()
    _log(
        session,
        user,
        "case.create",
        "case",
        case.id,
        addr,
        clock,
        number=number,
        kind=data.kind,
        stage=data.stage,
        reviewers=reviewers,
    )
    return case


def set_reviewers(
    session: Session, user: User, case_id: str, names: Sequence[str], *, addr: str = "", clock: Clock = utcnow
) -> Case:
    case = get_case(session, user, case_id)
    authorize(user, Permission.CASE_ADMIN, "assign reviewers")
    wanted = set(_reviewers(session, names))
    current = {
        r.user_name: r for r in session.exec(select(CaseReviewer).where(CaseReviewer.case_id == case.id))
    }
    for name in set(current) - wanted:
        session.delete(current[name])
    for name in wanted - set(current):
        session.add(CaseReviewer(case_id=case.id, user_name=name, assigned_by=user.name, assigned_at=clock()))
    session.flush()
    _log(session, user, "case.reviewers", "case", case.id, addr, clock, reviewers=sorted(wanted))
    return case


@dataclass(frozen=True)
class CaseChange:
    """What a records manager or admin may change on an open case: its title, its current procedural
    stage and its status. The number, agency and kind are the case's identity and never change."""

    title: str | None = None
    stage: Stage | None = None
    status: CaseStatus | None = None


def update_case(
    session: Session, user: User, case_id: str, change: CaseChange, *, addr: str = "", clock: Clock = utcnow
) -> Case:
    case = get_case(session, user, case_id)
    authorize(user, Permission.CASE_ADMIN, f"change case {case.number}")
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    if change.title is not None:
        title = change.title.strip()
        if not title:
            raise InvalidInput("case title must not be empty")
        if title != case.title:
            before["title"], after["title"] = case.title, title
            case.title = title
    for name in ("stage", "status"):
        value = getattr(change, name)
        if value is not None and value != getattr(case, name):
            before[name], after[name] = getattr(case, name), value
            setattr(case, name, value)
    if not after:
        return case  # nothing changed: nothing logged
    case.updated_at = clock()
    session.add(case)
    session.flush()
    _log(session, user, "case.update", "case", case.id, addr, clock, before=before, after=after)
    return case


def case_public(session: Session, case: Case) -> CasePublic:
    names = session.exec(
        select(CaseReviewer.user_name)
        .where(CaseReviewer.case_id == case.id)
        .order_by(col(CaseReviewer.user_name))
    ).all()
    return CasePublic.model_validate({**case.model_dump(), "reviewers": list(names)})


def view_case(session: Session, user: User, case_id: str, *, addr: str = "", clock: Clock = utcnow) -> Case:
    case = get_case(session, user, case_id)
    _log(session, user, "case.view", "case", case.id, addr, clock)
    return case


@dataclass(frozen=True)
class CaseQuery:
    number: str | None = None
    officer: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    stage: Stage | None = None
    status: CaseStatus | None = None
    kind: CaseKind | None = None
    limit: int = 100
    offset: int = 0


def find_cases(session: Session, user: User, q: CaseQuery) -> tuple[list[Case], int]:
    """Cases by number, officer (named in a record, or whose media are linked), date range (a record's
    window overlaps it) and stage. Only cases the caller may see."""
    stmt = select(Case).where(visible_cases_clause(user))
    if q.number:
        stmt = stmt.where(Case.number == q.number.strip())
    if q.stage:
        stmt = stmt.where(Case.stage == q.stage)
    if q.status:
        stmt = stmt.where(Case.status == q.status)
    if q.kind:
        stmt = stmt.where(Case.kind == q.kind)
    if q.officer:
        named = (
            select(TextRecord.case_id)
            .join(RecordOfficer, col(RecordOfficer.record_row) == col(TextRecord.id))
            .where(RecordOfficer.badge == q.officer)
        )
        filmed = (
            select(CaseMedia.case_id)
            .join(Media, col(Media.id) == col(CaseMedia.media_id))
            .where(Media.officer_badge == q.officer, col(CaseMedia.unlinked_at).is_(None))
        )
        stmt = stmt.where(or_(col(Case.id).in_(named), col(Case.id).in_(filmed)))
    if q.since or q.until:
        window = select(TextRecord.case_id)
        if q.since:
            window = window.where(col(TextRecord.occurred_to) >= q.since)
        if q.until:
            window = window.where(col(TextRecord.occurred_from) <= q.until)
        stmt = stmt.where(col(Case.id).in_(window))
    total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    rows = session.exec(
        stmt.order_by(col(Case.created_at).desc(), col(Case.id)).offset(q.offset).limit(q.limit)
    ).all()
    return list(rows), int(total)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class RecordInput:
    stage: Stage
    doc_kind: DocumentKind
    author: str
    occurred_from: datetime
    occurred_to: datetime
    body: str
    title: str = ""
    officers: Sequence[str] = ()
    attachments: Sequence[str] = ()


def _check_record(data: RecordInput, max_body: int) -> tuple[datetime, datetime, list[str]]:
    if data.occurred_from.tzinfo is None or data.occurred_to.tzinfo is None:
        raise InvalidRecord("occurred_from and occurred_to must carry a UTC offset")
    start, end = as_utc(data.occurred_from), as_utc(data.occurred_to)
    if end < start:
        raise InvalidRecord(f"occurred_to ({end.isoformat()}) is before occurred_from ({start.isoformat()})")
    if len(data.body) > max_body:
        raise InvalidRecord(f"body is {len(data.body)} characters; the limit is {max_body}")
    if not data.author.strip():
        raise InvalidRecord("author must not be empty")
    officers = sorted(set(data.officers))
    if len(officers) > MAX_OFFICERS:
        raise InvalidRecord(f"at most {MAX_OFFICERS} officers per record")
    for badge in officers:
        if not _BADGE.match(badge):
            raise InvalidRecord(f"officer {badge[:70]!r} is not a badge number")
    if len(data.attachments) > MAX_ATTACHMENTS:
        raise InvalidRecord(f"at most {MAX_ATTACHMENTS} attachments per record")
    return start, end, officers


def _attachments(session: Session, user: User, ids: Sequence[str]) -> list[str]:
    out: list[str] = []
    for media_id in dict.fromkeys(ids):
        item = session.get(Media, media_id)
        if item is None or not media_visible(session, user, item):
            raise InvalidRecord(f"attachment {media_id[:40]!r}: no such media item")
        if item.state in UNLINKABLE:
            raise InvalidRecord(f"attachment {media_id}: {item.state} items are not archived originals")
        out.append(media_id)
    return out


ATTACHMENT_DEVICE = "case-attachment"  # the "device" of scans and PDFs uploaded to a case


def attachment_metadata(user: User, filename: str, content_type: str, sha256: str) -> dict[str, str]:
    """The upload metadata an attachment is recorded with, checked as a dock's would be. The API
    calls this before it reads or stores a byte, so a bad name or type leaves nothing behind."""
    meta = {
        "filename": filename,
        "officer": user.name,
        "device": ATTACHMENT_DEVICE,
        "sha256": sha256,
        "content_type": content_type,
    }
    uploads.DockMetadata.parse(meta)
    return meta


def add_attachment(
    session: Session,
    user: User,
    case_id: str,
    *,
    upload_id: str,
    object_key: str,
    filename: str,
    content_type: str,
    size: int,
    sha256: str,
    part_size: int,
    addr: str = "",
    clock: Clock = utcnow,
) -> Media:
    """Record a scan or PDF whose bytes are already at ``object_key`` in the originals bucket as a
    finished upload, exactly as the tus endpoint does (same media row, same ``media.receive`` event;
    the caller then sends it to the same verify -> probe -> derive -> sign pipeline), and link it to
    the case as an attachment so the case's reviewers can see it and a record can name it.

    The uploader stands as the item's "officer" and ``case-attachment`` as its device; it has no
    recording time, so the auto-link rule never considers it and the timeline lists it last."""
    case = get_case(session, user, case_id)
    require_writer(session, user, case)
    if user.id is None:
        raise Forbidden("no such account")
    upload = Upload(
        id=upload_id,
        length=size,
        part_size=part_size,
        object_key=object_key,
        created_by=user.id,
        metadata_=attachment_metadata(user, filename, content_type, sha256),
        state=UploadState.COMPLETE,
        offset=size,
    )
    session.add(upload)
    session.flush()
    item = uploads.complete_upload(session, upload, user, addr, None)
    _link(
        session,
        actor(user),
        case,
        item.id,
        LinkSource.ATTACHMENT,
        f"attachment {filename} uploaded to case {case.number}",
        None,
        addr,
        clock,
    )
    return item


def add_record(
    session: Session,
    user: User,
    case_id: str,
    data: RecordInput,
    *,
    addr: str = "",
    buffer_s: float = 300.0,
    max_body: int = 200_000,
    clock: Clock = utcnow,
    record_id: str | None = None,
) -> tuple[TextRecord, list[str]]:
    """Store a new record (or, with ``record_id``, its next version) and apply the auto-link rule.
    Returns the stored version and the media ids it newly linked."""
    case = get_case(session, user, case_id)
    require_writer(session, user, case)
    start, end, officers = _check_record(data, max_body)
    attachments = _attachments(session, user, data.attachments)
    version = 1
    if record_id is not None:
        latest = session.exec(
            select(func.max(TextRecord.version)).where(
                TextRecord.record_id == record_id, TextRecord.case_id == case.id
            )
        ).one()
        if latest is None:
            raise NotFound(f"no record {record_id} in case {case.number}")
        version = int(latest) + 1
    rec = TextRecord(
        case_id=case.id,
        stage=data.stage,
        doc_kind=data.doc_kind,
        title=data.title.strip(),
        author=data.author.strip(),
        officers=officers,
        occurred_from=start,
        occurred_to=end,
        body=data.body,
        attachments=attachments,
        created_by=user.name,
        created_at=clock(),
        version=version,
    )
    if record_id is not None:
        rec.record_id = record_id
    session.add(rec)
    session.flush()
    for badge in officers:
        session.add(RecordOfficer(record_row=rec.id or 0, badge=badge))
    session.flush()
    _log(
        session,
        user,
        "record.create" if version == 1 else "record.version",
        "record",
        rec.record_id,
        addr,
        clock,
        case=case.id,
        version=version,
        stage=rec.stage,
        doc_kind=rec.doc_kind,
        officers=officers,
        window=[start.isoformat(), end.isoformat()],
        body_chars=len(rec.body),
    )
    linked: list[str] = []
    for media_id in attachments:
        if _open_link(session, case.id, media_id) is None:
            _link(
                session,
                actor(user),
                case,
                media_id,
                LinkSource.ATTACHMENT,
                f"attachment of record {rec.record_id}",
                rec.record_id,
                addr,
                clock,
            )
            linked.append(media_id)
    linked += autolink(session, user, case, rec, buffer_s=buffer_s, addr=addr, clock=clock)
    return rec, linked


def records(session: Session, user: User, case_id: str, *, all_versions: bool = False) -> list[TextRecord]:
    case = get_case(session, user, case_id)
    rows = list(
        session.exec(
            select(TextRecord)
            .where(TextRecord.case_id == case.id)
            .order_by(col(TextRecord.occurred_from), col(TextRecord.record_id), col(TextRecord.version))
        )
    )
    if all_versions:
        return rows
    latest: dict[str, TextRecord] = {}
    for r in rows:
        if r.record_id not in latest or r.version > latest[r.record_id].version:
            latest[r.record_id] = r
    return sorted(latest.values(), key=lambda r: (r.occurred_from, r.record_id))


def record_versions(session: Session, user: User, case_id: str, record_id: str) -> list[TextRecord]:
    case = get_case(session, user, case_id)
    rows = list(
        session.exec(
            select(TextRecord)
            .where(TextRecord.case_id == case.id, TextRecord.record_id == record_id)
            .order_by(col(TextRecord.version))
        )
    )
    if not rows:
        raise NotFound(f"no record {record_id} in case {case.number}")
    return rows


def record_public(r: TextRecord) -> RecordPublic:
    return RecordPublic.model_validate(r.model_dump())


def _fts_query(q: str) -> list[str]:
    # Words only, each quoted: user input never reaches FTS5 or tsquery syntax (no operator injection,
    # no syntax errors on a stray quote). All words must match.
    return list(re.findall(r"\w+", q)[:20])


def search_records(session: Session, user: User, q: str, *, limit: int = 50) -> list[TextRecord]:
    words = _fts_query(q)
    if not words:
        raise InvalidInput("search needs at least one word")
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            sql_text(
                "SELECT id FROM case_records WHERE search_tsv @@ plainto_tsquery('simple', :q) "
                "ORDER BY ts_rank(search_tsv, plainto_tsquery('simple', :q)) DESC, id DESC LIMIT :n"
            ),
            {"q": " ".join(words), "n": limit * 4},
        ).all()
    else:
        match = " ".join('"' + w.replace('"', "") + '"' for w in words)
        rows = session.execute(
            sql_text(
                "SELECT rowid FROM case_records_fts WHERE case_records_fts MATCH :q ORDER BY rank LIMIT :n"
            ),
            {"q": match, "n": limit * 4},
        ).all()
    ids = [int(r[0]) for r in rows]
    if not ids:
        return []
    found = {
        r.id: r
        for r in session.exec(
            select(TextRecord)
            .join(Case, col(Case.id) == col(TextRecord.case_id))
            .where(col(TextRecord.id).in_(ids), visible_cases_clause(user))
        )
    }
    return [found[i] for i in ids if i in found][:limit]


# --------------------------------------------------------------------------- links


def _open_link(session: Session, case_id: str, media_id: str) -> CaseMedia | None:
    return session.exec(
        select(CaseMedia).where(
            CaseMedia.case_id == case_id, CaseMedia.media_id == media_id, col(CaseMedia.unlinked_at).is_(None)
        )
    ).first()


def _link(
    session: Session,
    who: str,
    case: Case,
    media_id: str,
    source: LinkSource,
    reason: str,
    record_id: str | None,
    addr: str,
    clock: Clock,
) -> CaseMedia:
    """``who``: the actor as the custody log names it (``user:NAME``, or the worker for links the rule
    makes when a recording is archived after the record was written)."""
    link = CaseMedia(
        case_id=case.id,
        media_id=media_id,
        source=source,
        reason=reason,
        record_id=record_id,
        linked_by=who,
        linked_at=clock(),
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
        details={"case": case.id, "source": source, "reason": reason, "record": record_id},
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
        if _open_link(session, link.case_id, original.id) is not None:
            continue
        case = session.get(Case, link.case_id)
        if case is None:
            continue
        _link(
            session,
            who,
            case,
            original.id,
            link.source,
            f"same bytes as {duplicate.id}, linked by {link.linked_by}: {link.reason}"[:2000],
            link.record_id,
            "",
            clock,
        )
        made += 1
    return made


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidInput("a reason is required")
    if len(reason) > 2000:
        raise InvalidInput("reason: at most 2000 characters")
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
        raise NotFound(f"no media {media_id}")
    if item.state in UNLINKABLE:
        hint = f"; link the original {item.duplicate_of}" if item.duplicate_of else ""
        raise InvalidInput(f"media {media_id} is {item.state}, not an archived original{hint}")
    existing = _open_link(session, case.id, media_id)
    if existing is not None:
        return existing  # linking twice changes nothing and logs nothing
    return _link(session, actor(user), case, media_id, LinkSource.MANUAL, reason, None, addr, clock)


def unlink_media(
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
    link = _open_link(session, case.id, media_id)
    if link is None:
        raise NotFound(f"media {media_id} is not linked to case {case.number}")
    link.unlinked_at = clock()
    link.unlinked_by = actor(user)
    link.unlink_reason = reason
    session.add(link)
    session.flush()
    _log(
        session,
        user,
        "case.unlink",
        "media",
        media_id,
        addr,
        clock,
        case=case.id,
        reason=reason,
        was=link.source,
    )
    return link


def links(session: Session, user: User, case_id: str, *, include_closed: bool = False) -> list[CaseMedia]:
    case = get_case(session, user, case_id)
    stmt = select(CaseMedia).where(CaseMedia.case_id == case.id)
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
    off = item.clock_offset_s
    if off == 0:
        how = "no offset" if item.clock_source != "assumed" else "offset unknown, assumed 0"
        return f"device clock: {how} ({item.clock_source})"
    direction = "fast" if off > 0 else "slow"
    return f"device clock {abs(off):g} s {direction} ({item.clock_source}); times shown corrected"


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
    if not rec.officers:
        return []
    devices = select(Device.serial).where(col(Device.officer_badge).in_(rec.officers))
    candidates = session.exec(
        select(Media).where(
            or_(col(Media.officer_badge).in_(rec.officers), col(Media.device_serial).in_(devices)),
            col(Media.recorded_at).is_not(None),
            col(Media.state).not_in(list(UNLINKABLE | {MediaState.DELETED})),
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
        _link(
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
        )
        made.append(m.id)
    return made


def _blocked(session: Session, case_id: str, media_ids: Sequence[str]) -> set[str]:
    """Media the rule must not link to this case: linked already, or unlinked by a person."""
    existing = session.exec(
        select(CaseMedia).where(CaseMedia.case_id == case_id, col(CaseMedia.media_id).in_(list(media_ids)))
    ).all()
    return {ln.media_id for ln in existing if ln.unlinked_at is None or ln.unlinked_by is not None}


def autolink_media(
    session: Session, item: Media, *, buffer_s: float, who: str = events.SYSTEM_WORKER, clock: Clock = utcnow
) -> list[str]:
    """The auto-link rule from the recording's side, for media archived after the record was written
    (officers dock at the end of a shift; records are often typed before that). Links ``item`` to
    every case with a record (latest version) naming the item's officer, or the officer its device is
    assigned to, whose window +- ``buffer_s`` overlaps the item's corrected span. Returns case ids."""
    if item.state in UNLINKABLE or item.state is MediaState.DELETED:
        return []
    if item.device_serial == ATTACHMENT_DEVICE:
        # A scan's EXIF time is not a recording of the scene: attachments join cases by hand only.
        return []
    span = corrected_span(item)
    if span is None:
        return []
    badges = {item.officer_badge}
    device = session.get(Device, item.device_serial)
    if device is not None and device.officer_badge:
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
        if badges & set(r.officers) and overlaps(
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
        _link(
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
        )
        made.append(case_id)
    return made


# --------------------------------------------------------------------------- timeline


@dataclass
class _Row:
    at: datetime | None
    order: int
    item: TimelineMedia | TimelineRecord = field(compare=False)


def timeline(
    session: Session, user: User, case_id: str, *, addr: str = "", via: str = "api", clock: Clock = utcnow
) -> Timeline:
    """Text records (latest versions) and linked media in time order on the corrected clock."""
    case = get_case(session, user, case_id)
    _log(session, user, "case.timeline", "case", case.id, addr, clock, via=via)
    recs = records(session, user, case.id)
    open_links = links(session, user, case.id)
    by_media: dict[str, list[CaseMedia]] = {}
    for ln in open_links:
        by_media.setdefault(ln.media_id, []).append(ln)
    media_rows = (
        list(session.exec(select(Media).where(col(Media.id).in_(list(by_media))))) if by_media else []
    )
    ders: dict[tuple[str, DerivativeKind], Derivative] = {}
    if media_rows:
        for d in session.exec(select(Derivative).where(col(Derivative.media_id).in_(list(by_media)))):
            ders[(d.media_id, d.kind)] = d
    rows: list[_Row] = []
    for r in recs:
        rows.append(
            _Row(
                as_utc(r.occurred_from),
                1,
                TimelineRecord(
                    record_id=r.record_id,
                    version=r.version,
                    stage=r.stage,
                    doc_kind=r.doc_kind,
                    title=r.title,
                    author=r.author,
                    officers=r.officers,
                    start=as_utc(r.occurred_from),
                    end=as_utc(r.occurred_to),
                    body=r.body,
                    attachments=r.attachments,
                ),
            )
        )
    for m in media_rows:
        span = corrected_span(m)
        proxy = ders.get((m.id, DerivativeKind.PROXY))
        poster = ders.get((m.id, DerivativeKind.POSTER))
        # The case rides along so the stream's custody event says through which case it was watched.
        rows.append(
            _Row(
                span[0] if span else None,
                0,
                TimelineMedia(
                    id=m.id,
                    kind=str((m.probe or {}).get("kind") or "unknown"),
                    file_name=m.file_name,
                    state=m.state,
                    officer=m.officer_badge,
                    device=m.device_serial,
                    start=span[0] if span else None,
                    end=span[1] if span else None,
                    duration_s=(m.probe or {}).get("duration_s"),
                    recorded_at_device=dev[0] if (dev := device_start(m)) else None,
                    device_time_source=dev[1] if dev else None,
                    clock_offset_s=m.clock_offset_s,
                    clock_source=m.clock_source,
                    correction=correction_note(m),
                    proxy_url=f"/api/v1/media/{m.id}/proxy?case={case.id}" if proxy else None,
                    poster_url=f"/api/v1/media/{m.id}/poster?case={case.id}" if poster else None,
                    proxy_type=proxy.content_type if proxy else None,
                    links=[
                        {"source": ln.source, "reason": ln.reason, "record_id": ln.record_id}
                        for ln in by_media[m.id]
                    ],
                ),
            )
        )
    far = datetime.max.replace(tzinfo=UTC)
    rows.sort(
        key=lambda r: (r.at or far, r.order, getattr(r.item, "id", "") or getattr(r.item, "record_id", ""))
    )
    return Timeline(case=case_public(session, case), items=[r.item for r in rows])

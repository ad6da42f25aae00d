"""Cases: open, assign reviewers, change title/stage/status, view and find."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlmodel import Session, col, select

from archive.access import Permission, actor, authorize, can
from archive.accounts.models import User
from archive.cases.access import get_case, log_change, visible_cases_clause
from archive.cases.errors import DuplicateCaseNumber
from archive.cases.models import (
    Case,
    CaseKind,
    CaseMedia,
    CaseOfficer,
    CaseOfficerPublic,
    CasePublic,
    CaseReviewer,
    CaseStatus,
    RecordOfficer,
    Stage,
    TextRecord,
)
from archive.clock import Clock, checked_utc, utcnow
from archive.errors import InvalidInput, NotFound
from archive.i18n import _
from archive.media.models import Media

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
            raise InvalidInput(_("reviewer {name!r} is not a reviewer account").format(name=name))
    return out


def create_case(
    session: Session, user: User, data: CaseInput, *, addr: str = "", clock: Clock = utcnow
) -> Case:
    authorize(user, Permission.CASE_ADMIN, "open cases")
    number, title = data.number.strip(), data.title.strip()
    if not number or not title:
        raise InvalidInput(_("case number and title must not be empty"))
    taken = session.exec(select(Case.id).where(Case.agency == data.agency, Case.number == number)).first()
    if taken:
        raise DuplicateCaseNumber(
            _("case number {number!r} already exists in agency {agency!r}").format(
                number=number, agency=data.agency
            )
        )
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
        raise DuplicateCaseNumber(
            _("case number {number!r} already exists in agency {agency!r}").format(
                number=number, agency=data.agency
            )
        ) from exc
    for name in reviewers:
        session.add(CaseReviewer(case_id=case.id, user_name=name, assigned_by=user.name, assigned_at=now))
    session.flush()
    log_change(
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
    log_change(session, user, "case.reviewers", "case", case.id, addr, clock, reviewers=sorted(wanted))
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
            raise InvalidInput(_("case title must not be empty"))
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
    log_change(session, user, "case.update", "case", case.id, addr, clock, before=before, after=after)
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
    log_change(session, user, "case.view", "case", case.id, addr, clock)
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
    since = checked_utc(q.since, "since") if q.since else None
    until = checked_utc(q.until, "until") if q.until else None
    if since or until:
        window = select(TextRecord.case_id)
        if since:
            window = window.where(col(TextRecord.occurred_to) >= since)
        if until:
            window = window.where(col(TextRecord.occurred_from) <= until)
        stmt = stmt.where(col(Case.id).in_(window))
    total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    rows = session.exec(
        stmt.order_by(col(Case.created_at).desc(), col(Case.id)).offset(q.offset).limit(q.limit)
    ).all()
    return list(rows), int(total)


# --------------------------------------------------------------------------- officers on a case

_BADGE_MAX = 64


def put_officer_on_case(
    session: Session,
    user: User,
    case: Case,
    badge: str,
    reason: str,
    *,
    addr: str = "",
    clock: Clock = utcnow,
) -> CaseOfficer:
    """Put ``badge`` on ``case`` (the caller has checked the permission), logged ``case.officer.add``."""
    row = session.get(CaseOfficer, (case.id, badge))
    if row is not None:
        return row
    row = CaseOfficer(case_id=case.id, badge=badge, reason=reason, added_by=actor(user), added_at=clock())
    session.add(row)
    session.flush()
    log_change(session, user, "case.officer.add", "case", case.id, addr, clock, badge=badge, reason=reason)
    return row


def _officer_input(badge: str, reason: str) -> tuple[str, str]:
    badge, reason = badge.strip(), reason.strip()
    if not badge or len(badge) > _BADGE_MAX or not badge.isprintable():
        raise InvalidInput(_("badge: 1 to {n} printable characters").format(n=_BADGE_MAX))
    if not reason or len(reason) > 2000:
        raise InvalidInput(_("a reason (at most 2000 characters) is required"))
    return badge, reason


def add_case_officer(
    session: Session,
    user: User,
    case_id: str,
    badge: str,
    reason: str,
    *,
    addr: str = "",
    clock: Clock = utcnow,
) -> list[CaseOfficerPublic]:
    """A records manager (or admin) puts an officer on a case: the auto-link rule of the case's
    records may then link that officer's recordings (pending for writers who could not see them).
    Returns the officers on the case."""
    authorize(user, Permission.CASE_OFFICERS_MANAGE, _("put officers on a case"))
    case = get_case(session, user, case_id)
    badge, reason = _officer_input(badge, reason)
    put_officer_on_case(session, user, case, badge, reason, addr=addr, clock=clock)
    return case_officers(session, user, case.id)


def remove_case_officer(
    session: Session,
    user: User,
    case_id: str,
    badge: str,
    reason: str,
    *,
    addr: str = "",
    clock: Clock = utcnow,
) -> list[CaseOfficerPublic]:
    """Take an officer off a case: the rule links none of their recordings to it from now on
    (links already made stay, and are unlinked by a person if wrong). Logged ``case.officer.remove``."""
    authorize(user, Permission.CASE_OFFICERS_MANAGE, _("take officers off a case"))
    case = get_case(session, user, case_id)
    badge, reason = _officer_input(badge, reason)
    row = session.get(CaseOfficer, (case.id, badge))
    if row is None:
        raise NotFound(_("officer {badge} is not on case {case}").format(badge=badge, case=case.number))
    session.delete(row)
    session.flush()
    log_change(session, user, "case.officer.remove", "case", case.id, addr, clock, badge=badge, reason=reason)
    return case_officers(session, user, case.id)


def case_officers(session: Session, user: User, case_id: str) -> list[CaseOfficerPublic]:
    """The officers on a case, for anyone who may read the case."""
    case = get_case(session, user, case_id)
    rows = session.exec(
        select(CaseOfficer).where(CaseOfficer.case_id == case.id).order_by(col(CaseOfficer.badge))
    )
    return [CaseOfficerPublic.model_validate(r.model_dump()) for r in rows]

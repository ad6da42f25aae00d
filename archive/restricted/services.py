"""Marks, grants and reads of restricted items.

A marked item is readable only by users granted that item, or its case, explicitly; everyone else gets
404 as if it did not exist (``RestrictedNotFound``, logged by the API as ``access.denied``). Listings
leave marked items out for users without a grant. A granted user reads the item only with a stated
purpose, stored with the ``restricted.read`` event. Marks, grants and reads are custody-log events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_
from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, actor, authorize
from archive.accounts.models import User
from archive.cases.models import Case, CaseMedia, TextRecord
from archive.clock import Clock, utcnow
from archive.errors import Conflict, NotFound
from archive.i18n import _
from archive.media.models import Media
from archive.restricted.errors import InvalidRestriction, RestrictedNotFound
from archive.restricted.models import (
    LABELS_ZH,
    Grant,
    GrantCreate,
    GrantPublic,
    Mark,
    MarkCreate,
    MarkPublic,
    SubjectKind,
)

MAX_PURPOSE = 2000


def _reason(text: str, what: str) -> str:
    text = text.strip()
    if not text:
        raise InvalidRestriction(_("{what} needs a reason").format(what=what))
    return text


def _subject_case(session: Session, kind: SubjectKind, subject_id: str) -> str | None:
    """The subject's case (records: their case; media: None), or 422 when there is no such subject."""
    if kind is SubjectKind.RECORD:
        case_id = session.exec(select(TextRecord.case_id).where(TextRecord.record_id == subject_id)).first()
        if case_id is None:
            raise InvalidRestriction(_("no record {id}").format(id=subject_id[:40]))
        return case_id
    if kind is SubjectKind.MEDIA:
        if session.get(Media, subject_id) is None:
            raise InvalidRestriction(_("no media item {id}").format(id=subject_id[:40]))
        return None
    if session.get(Case, subject_id) is None:
        raise InvalidRestriction(_("no case {id}").format(id=subject_id[:40]))
    return subject_id


def active_mark(session: Session, kind: SubjectKind, subject_id: str) -> Mark | None:
    return session.exec(
        select(Mark).where(
            Mark.subject_kind == kind, Mark.subject_id == subject_id, col(Mark.lifted_at).is_(None)
        )
    ).first()


def mark(session: Session, user: User, data: MarkCreate, *, addr: str = "", clock: Clock = utcnow) -> Mark:
    authorize(user, Permission.RESTRICT_MANAGE)
    if data.subject_kind is SubjectKind.CASE:
        raise InvalidRestriction(_("mark a record, an attachment or a recording; grants may name a case"))
    reason = _reason(data.reason, _("a mark"))
    case_id = _subject_case(session, data.subject_kind, data.subject_id)
    if active_mark(session, data.subject_kind, data.subject_id) is not None:
        raise Conflict(_("{kind} {id} is already marked").format(kind=data.subject_kind, id=data.subject_id))
    row = Mark(
        subject_kind=data.subject_kind,
        subject_id=data.subject_id,
        case_id=case_id,
        sensitivity=data.sensitivity,
        reason=reason,
        marked_by=actor(user),
        marked_at=clock(),
    )
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="restricted.mark",
        subject_type=data.subject_kind,
        subject_id=data.subject_id,
        client_addr=addr,
        clock=clock,
        details={"sensitivity": data.sensitivity, "reason": reason, "case": case_id, "mark": row.id},
    )
    return row


def lift(
    session: Session, user: User, mark_id: int, reason: str, *, addr: str = "", clock: Clock = utcnow
) -> Mark:
    authorize(user, Permission.RESTRICT_MANAGE)
    why = _reason(reason, _("lifting a mark"))
    row = session.get(Mark, mark_id)
    if row is None or row.lifted_at is not None:
        raise NotFound(_("no active mark {id}").format(id=mark_id))
    row.lifted_at, row.lifted_by, row.lift_reason = clock(), actor(user), why
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="restricted.lift",
        subject_type=row.subject_kind,
        subject_id=row.subject_id,
        client_addr=addr,
        clock=clock,
        details={"reason": why, "mark": row.id},
    )
    return row


def grant(session: Session, user: User, data: GrantCreate, *, addr: str = "", clock: Clock = utcnow) -> Grant:
    authorize(user, Permission.RESTRICT_MANAGE)
    reason = _reason(data.reason, _("a grant"))
    if (
        session.exec(select(User).where(User.name == data.user_name, col(User.disabled).is_(False))).first()
        is None
    ):
        raise InvalidRestriction(_("no user {name}").format(name=data.user_name[:64]))
    _subject_case(session, data.subject_kind, data.subject_id)
    row = Grant(
        user_name=data.user_name,
        subject_kind=data.subject_kind,
        subject_id=data.subject_id,
        reason=reason,
        granted_by=actor(user),
        granted_at=clock(),
    )
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="restricted.grant",
        subject_type=data.subject_kind,
        subject_id=data.subject_id,
        client_addr=addr,
        clock=clock,
        details={"to": data.user_name, "reason": reason, "grant": row.id},
    )
    return row


def revoke(session: Session, user: User, grant_id: int, *, addr: str = "", clock: Clock = utcnow) -> Grant:
    authorize(user, Permission.RESTRICT_MANAGE)
    row = session.get(Grant, grant_id)
    if row is None or row.revoked_at is not None:
        raise NotFound(_("no active grant {id}").format(id=grant_id))
    row.revoked_at, row.revoked_by = clock(), actor(user)
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="restricted.revoke",
        subject_type=row.subject_kind,
        subject_id=row.subject_id,
        client_addr=addr,
        clock=clock,
        details={"from": row.user_name, "grant": row.id},
    )
    return row


def marks(session: Session, user: User, *, case_id: str | None = None) -> list[Mark]:
    """Marks for the records office and auditors (what is marked and why; never the content)."""
    authorize(user, Permission.RESTRICT_LIST)
    stmt = select(Mark)
    if case_id:
        stmt = stmt.where(Mark.case_id == case_id)
    return list(session.exec(stmt.order_by(col(Mark.id))))


def grants(session: Session, user: User) -> list[Grant]:
    authorize(user, Permission.RESTRICT_LIST)
    return list(session.exec(select(Grant).order_by(col(Grant.id))))


def my_grants(session: Session, user: User) -> list[Grant]:
    return list(
        session.exec(
            select(Grant)
            .where(Grant.user_name == user.name, col(Grant.revoked_at).is_(None))
            .order_by(col(Grant.id))
        )
    )


# --------------------------------------------------------------------------- who sees what


@dataclass(frozen=True)
class Hidden:
    """Marked items ``user`` holds no grant for: leave them out, answer 404 for them."""

    records: frozenset[str]
    media: frozenset[str]

    def hides(self, kind: SubjectKind | str, subject_id: str) -> bool:
        return subject_id in (self.records if kind == SubjectKind.RECORD else self.media)


def _granted(session: Session, user: User) -> tuple[set[tuple[str, str]], set[str]]:
    rows = my_grants(session, user)
    items = {(g.subject_kind.value, g.subject_id) for g in rows if g.subject_kind is not SubjectKind.CASE}
    case_ids = {g.subject_id for g in rows if g.subject_kind is SubjectKind.CASE}
    return items, case_ids


def hidden(session: Session, user: User, *, case_id: str | None = None) -> Hidden:
    stmt = select(Mark).where(col(Mark.lifted_at).is_(None))
    active = list(session.exec(stmt))
    if not active:
        return Hidden(frozenset(), frozenset())
    items, case_ids = _granted(session, user)
    media_cases: dict[str, set[str]] = {}
    media_marks = [m.subject_id for m in active if m.subject_kind is SubjectKind.MEDIA]
    if media_marks and case_ids:
        for mid, cid in session.exec(
            select(CaseMedia.media_id, CaseMedia.case_id).where(
                col(CaseMedia.media_id).in_(media_marks), col(CaseMedia.unlinked_at).is_(None)
            )
        ):
            media_cases.setdefault(mid, set()).add(cid)
    recs: set[str] = set()
    media: set[str] = set()
    for m in active:
        if (m.subject_kind.value, m.subject_id) in items:
            continue
        if m.subject_kind is SubjectKind.RECORD:
            if m.case_id not in case_ids:
                recs.add(m.subject_id)
        elif not (media_cases.get(m.subject_id, set()) & case_ids):
            media.add(m.subject_id)
    return Hidden(frozenset(recs), frozenset(media))


def check_read(
    session: Session,
    user: User,
    kind: SubjectKind,
    subject_id: str,
    purpose: str | None,
    *,
    addr: str = "",
    action: str = "read",
    clock: Clock = utcnow,
) -> Mark | None:
    """Before any read of an item: nothing when it is not marked; 404 without a grant; 422 without a
    stated purpose; otherwise the read is logged with its purpose and the mark is returned."""
    m = active_mark(session, kind, subject_id)
    if m is None:
        return None
    if hidden(session, user).hides(kind, subject_id):
        raise RestrictedNotFound(_("no {kind} {id}").format(kind=kind, id=subject_id[:40]))
    why = (purpose or "").strip()
    if not why:
        raise InvalidRestriction(
            _("{kind} {id} is restricted ({zh}): state the purpose of this read (purpose=...)").format(
                kind=kind, id=subject_id, zh=LABELS_ZH[m.sensitivity]
            )
        )
    events.record(
        session,
        actor=actor(user),
        action="restricted.read",
        subject_type=kind,
        subject_id=subject_id,
        client_addr=addr,
        clock=clock,
        details={
            "purpose": why[:MAX_PURPOSE],
            "sensitivity": m.sensitivity,
            "case": m.case_id,
            "via": action,
        },
    )
    return m


def visible_ids(session: Session, user: User, kind: SubjectKind, ids: Iterable[str]) -> list[str]:
    h = hidden(session, user)
    return [i for i in ids if not h.hides(kind, i)]


def mark_public(m: Mark) -> MarkPublic:
    return MarkPublic(
        id=m.id or 0,
        subject_kind=m.subject_kind,
        subject_id=m.subject_id,
        case_id=m.case_id,
        sensitivity=m.sensitivity,
        sensitivity_zh=LABELS_ZH[m.sensitivity],
        reason=m.reason,
        marked_by=m.marked_by,
        marked_at=m.marked_at,
        lifted_at=m.lifted_at,
    )


def grant_public(g: Grant) -> GrantPublic:
    return GrantPublic.model_validate(g.model_dump())


def read_record(
    session: Session, user: User, case_id: str, record_id: str, purpose: str, *, addr: str = ""
) -> list[TextRecord]:
    """Every version of a record, through the restricted door: a grant and a purpose when it is marked."""
    from archive.cases import services as cases

    return cases.record_versions(session, user, case_id, record_id, purpose=purpose, addr=addr)


def unmarked_clause(kind: SubjectKind, id_column: Any) -> ColumnElement[bool]:
    """SQL: the item carries no active mark (what everyone may list without stating a purpose)."""
    return ~exists().where(
        col(Mark.subject_kind) == kind, col(Mark.subject_id) == id_column, col(Mark.lifted_at).is_(None)
    )


def stated(purpose: str | None) -> str:
    """The purpose a reader stated, trimmed ("" when none)."""
    return (purpose or "").strip()[:MAX_PURPOSE]


def _granted_clause(user: User, kind: SubjectKind) -> ColumnElement[bool]:
    """SQL, inside a query on ``Mark``: ``user`` holds an active grant for the marked item or its case
    (a record's case is on its mark; a recording's cases are those it is linked to), as :func:`hidden`."""
    item = and_(col(Grant.subject_kind) == kind, col(Grant.subject_id) == col(Mark.subject_id))
    if kind is SubjectKind.RECORD:
        case = col(Grant.subject_id) == col(Mark.case_id)
    else:
        case = exists().where(
            col(CaseMedia.media_id) == col(Mark.subject_id),
            col(CaseMedia.case_id) == col(Grant.subject_id),
            col(CaseMedia.unlinked_at).is_(None),
        )
    return exists().where(
        col(Grant.user_name) == user.name,
        col(Grant.revoked_at).is_(None),
        or_(item, and_(col(Grant.subject_kind) == SubjectKind.CASE, case)),
    )


def listing_clause(user: User, kind: SubjectKind, id_column: Any, purpose: str | None) -> ColumnElement[bool]:
    """SQL: the item appears in ``user``'s listing. An unmarked item always; a marked item only for a
    reader who holds a grant for it (or its case) and stated a purpose, for whom every marked item
    listed is a logged read (:func:`log_listed`); for everyone else it is absent, as if it did not exist."""
    if not stated(purpose):
        return unmarked_clause(kind, id_column)
    return ~exists().where(
        col(Mark.subject_kind) == kind,
        col(Mark.subject_id) == id_column,
        col(Mark.lifted_at).is_(None),
        ~_granted_clause(user, kind),
    )


def log_listed(
    session: Session,
    user: User,
    kind: SubjectKind,
    ids: Iterable[str],
    purpose: str | None,
    *,
    via: str,
    addr: str = "",
    clock: Clock = utcnow,
) -> int:
    """One ``restricted.read`` event, with the stated purpose, for each marked item a listing showed
    (the listing let them through :func:`listing_clause`, so the reader holds a grant). Returns how many."""
    why = stated(purpose)
    wanted = sorted(set(ids))
    if not why or not wanted:
        return 0
    found: list[Mark] = []
    for i in range(0, len(wanted), 500):
        found += session.exec(
            select(Mark).where(
                Mark.subject_kind == kind,
                col(Mark.subject_id).in_(wanted[i : i + 500]),
                col(Mark.lifted_at).is_(None),
            )
        )
    for m in sorted(found, key=lambda m: m.subject_id):
        events.record(
            session,
            actor=actor(user),
            action="restricted.read",
            subject_type=kind,
            subject_id=m.subject_id,
            client_addr=addr,
            clock=clock,
            details={"purpose": why, "sensitivity": m.sensitivity, "case": m.case_id, "via": via},
        )
    return len(found)


def marked_ids(session: Session, kind: SubjectKind, ids: Iterable[str]) -> set[str]:
    wanted = list(ids)
    if not wanted:
        return set()
    found: set[str] = set()
    for i in range(0, len(wanted), 500):
        found.update(
            session.exec(
                select(Mark.subject_id).where(
                    Mark.subject_kind == kind,
                    col(Mark.subject_id).in_(wanted[i : i + 500]),
                    col(Mark.lifted_at).is_(None),
                )
            )
        )
    return found

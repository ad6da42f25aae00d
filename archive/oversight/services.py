"""Oversight for auditors: the latest early-warning run, statistics, and who accessed what.

Access oversight (调阅监督) reads the custody log: every view, stream, download and export is already
an event with its actor, time and client address; reads of restricted items carry the stated purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, actor, authorize
from archive.accounts.models import User
from archive.clock import as_utc
from archive.i18n import _
from archive.models import Event
from archive.oversight import check
from archive.oversight.errors import InvalidQuery
from archive.oversight.models import (
    LABELS_ZH,
    AccessEventPublic,
    OversightRun,
    OversightWarning,
    StatPublic,
    WarningKind,
    WarningPublic,
    WarningsPublic,
)

# What counts as access to evidence: reading it, watching it, taking it away.
ACCESS_ACTIONS = (
    "case.view",
    "case.timeline",
    "case.records",
    "case.links",
    "case.coverage",
    "case.export",
    "records.search",
    "media.view",
    "media.stream",
    "media.download",
    "media.export",
    "party.view",
    "party.id.read",
    "party.search",
    "restricted.read",
    "copyout.use",
)


def run_now(
    session: Session, user: User, *, unlinked_days: int, timezone: str, addr: str = ""
) -> OversightRun:
    authorize(user, Permission.OVERSIGHT)
    return check.run_check(session, unlinked_days=unlinked_days, timezone=timezone, actor=actor(user))


@dataclass(frozen=True)
class WarningQuery:
    kind: WarningKind | None = None
    agency: str | None = None
    officer: str | None = None
    case_id: str | None = None
    limit: int = 200
    offset: int = 0


def warnings(session: Session, user: User, q: WarningQuery, *, addr: str = "") -> WarningsPublic:
    """The latest finished run's warnings (filtered) and its statistics per unit and officer."""
    authorize(user, Permission.OVERSIGHT)
    result = latest(session, q)
    events.record(
        session,
        actor=actor(user),
        action="oversight.warnings",
        subject_type="oversight-run",
        subject_id=str(result.run_id),
        client_addr=addr,
        details={"kind": q.kind, "agency": q.agency, "officer": q.officer, "case": q.case_id},
    )
    return result


def latest(session: Session, q: WarningQuery) -> WarningsPublic:
    """The latest finished run, filtered (the caller has authorized the reader)."""
    run = session.exec(
        select(OversightRun)
        .where(col(OversightRun.finished_at).is_not(None))
        .order_by(col(OversightRun.id).desc())
    ).first()
    if run is None:
        return WarningsPublic(
            run_id=None,
            started_at=None,
            finished_at=None,
            item_list_version=None,
            counts={},
            total=0,
            items=[],
            stats=[],
        )
    stmt = select(OversightWarning).where(OversightWarning.run_id == run.id)
    if q.kind:
        stmt = stmt.where(OversightWarning.kind == q.kind)
    if q.agency:
        stmt = stmt.where(OversightWarning.agency == q.agency)
    if q.officer:
        stmt = stmt.where(
            or_(col(OversightWarning.officer) == q.officer, col(OversightWarning.officer).contains(q.officer))
        )
    if q.case_id:
        stmt = stmt.where(OversightWarning.case_id == q.case_id)
    total = int(session.exec(select(func.count()).select_from(stmt.subquery())).one())
    rows = session.exec(stmt.order_by(col(OversightWarning.id)).offset(q.offset).limit(q.limit)).all()
    stats = [StatPublic.model_validate(s) for s in run.stats]
    if q.agency:
        stats = [s for s in stats if s.agency == q.agency]
    if q.officer:
        stats = [s for s in stats if s.officer == q.officer]
    return WarningsPublic(
        run_id=run.id,
        started_at=run.started_at,
        finished_at=run.finished_at,
        item_list_version=run.item_list_version,
        counts=run.counts,
        total=total,
        items=[
            WarningPublic(
                kind=w.kind,
                label_zh=LABELS_ZH[w.kind],
                subject_type=w.subject_type,
                subject_id=w.subject_id,
                case_id=w.case_id,
                agency=w.agency,
                officer=w.officer,
                details=w.details,
            )
            for w in rows
        ],
        stats=stats,
    )


@dataclass(frozen=True)
class AccessQuery:
    subject_type: str | None = None
    subject_id: str | None = None
    case_id: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200
    offset: int = 0


def access(
    session: Session, user: User, q: AccessQuery, *, addr: str = ""
) -> tuple[list[AccessEventPublic], int]:
    """Who viewed, streamed, downloaded or exported what, when, from where and why."""
    authorize(user, Permission.OVERSIGHT)
    if q.action is not None and q.action not in ACCESS_ACTIONS:
        raise InvalidQuery(
            _("action {action!r} is not an access; one of: {actions}").format(
                action=q.action[:40], actions=", ".join(ACCESS_ACTIONS)
            )
        )
    if q.since and q.until and as_utc(q.until) < as_utc(q.since):
        raise InvalidQuery(_("until is before since"))
    if q.subject_id and not q.subject_type:
        raise InvalidQuery(_("subject_id needs subject_type"))
    stmt = select(Event).where(col(Event.action).in_([q.action] if q.action else list(ACCESS_ACTIONS)))
    if q.subject_type == "record" and q.subject_id:
        # A record's reads: through its own route (logged on its case, naming it) and restricted reads.
        stmt = stmt.where(
            or_(
                (col(Event.subject_type) == "record") & (col(Event.subject_id) == q.subject_id),
                col(Event.details)["record"].as_string() == q.subject_id,
            )
        )
    else:
        if q.subject_type:
            stmt = stmt.where(Event.subject_type == q.subject_type)
        if q.subject_id:
            stmt = stmt.where(Event.subject_id == q.subject_id)
    if q.case_id:
        # Reads of the case itself, and of media streamed through it ("?case=" rides on the event).
        stmt = stmt.where(
            or_(
                (col(Event.subject_type) == "case") & (col(Event.subject_id) == q.case_id),
                col(Event.details)["case"].as_string() == q.case_id,
            )
        )
    if q.actor:
        stmt = stmt.where(Event.actor == (q.actor if ":" in q.actor else f"user:{q.actor}"))
    if q.since:
        stmt = stmt.where(col(Event.at) >= as_utc(q.since))
    if q.until:
        stmt = stmt.where(col(Event.at) <= as_utc(q.until))
    total = int(session.exec(select(func.count()).select_from(stmt.subquery())).one())
    rows = session.exec(stmt.order_by(col(Event.id).desc()).offset(q.offset).limit(q.limit)).all()
    events.record(
        session,
        actor=actor(user),
        action="oversight.access",
        subject_type="query",
        subject_id=str(total),
        client_addr=addr,
        details={k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in q.__dict__.items() if v},
    )
    return [_access_public(e) for e in rows], total


def _access_public(e: Event) -> AccessEventPublic:
    d: dict[str, Any] = dict(e.details or {})
    case_id = e.subject_id if e.subject_type == "case" else d.get("case")
    return AccessEventPublic(
        id=e.id or 0,
        at=e.at,
        actor=e.actor,
        action=e.action,
        subject_type=e.subject_type,
        subject_id=e.subject_id,
        client_addr=e.client_addr,
        outcome=e.outcome,
        purpose=str(d.get("purpose", "")),
        case_id=str(case_id) if case_id else None,
        details=d,
    )

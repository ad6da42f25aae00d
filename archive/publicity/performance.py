"""How a decision has been carried out (行政执法决定的履行情况, seed 003, A10).

A publisher records a decision's performance: a status, the date it was established (``as_of``, not
in the future in the agency's local time, not before the decision) and an internal note. Each record
is a new version; the history is kept and readable by whoever may read publicity, and the newest
version is the current one. The public face shows, for a published decision that was not withdrawn,
the current status and its date, never the note.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import func
from sqlmodel import Session, col, select

from archive.access import Permission, authorize
from archive.accounts.models import User
from archive.clock import Clock, utcnow
from archive.context import Dispatcher
from archive.i18n import _
from archive.publicity import decisions, webhooks
from archive.publicity.errors import InvalidField
from archive.publicity.models import (
    PERFORMANCE_ZH,
    Decision,
    DecisionPerformance,
    DecisionState,
    PerformancePublic,
    PerformanceStatus,
    Redaction,
)
from archive.publicity.services import add_version, is_restricted, log, today

MAX_NOTE = 2000


def record(
    session: Session,
    user: User,
    decision_id: str,
    status: PerformanceStatus,
    as_of: date,
    *,
    note: str = "",
    dispatcher: Dispatcher | None = None,
    addr: str = "",
    clock: Clock = utcnow,
) -> DecisionPerformance:
    """A new version of the decision's performance (logged with the old and the new status). When the
    decision is on the public face (published, not restricted), the change is pushed to the external
    platform too."""
    authorize(user, Permission.PUBLISH)
    d = decisions.get(session, user, decision_id)
    on = today(clock)
    if as_of > on:
        raise InvalidField(
            _("as_of: {day} is in the future (today is {today} in the agency's time zone)").format(
                day=as_of, today=on
            )
        )
    if as_of < d.decided_on:
        raise InvalidField(
            _("as_of: {day} is before the decision of {decided}").format(day=as_of, decided=d.decided_on)
        )
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise InvalidField(_("note: longer than {n} characters").format(n=MAX_NOTE))
    previous = current(session, d.id)
    latest = session.exec(
        select(func.max(DecisionPerformance.version)).where(DecisionPerformance.decision_id == d.id)
    ).one()
    row = DecisionPerformance(
        decision_id=d.id,
        version=int(latest or 0) + 1,
        status=status,
        as_of=as_of,
        note=note,
        created_by=user.name,
        created_at=clock(),
    )
    add_version(session, row, _("the performance of decision {ref}").format(ref=d.ref))
    log(
        session,
        user,
        "publicity.performance.record",
        "decision",
        d.id,
        addr=addr,
        clock=clock,
        ref=d.ref,
        version=row.version,
        old_status=str(previous.status) if previous else None,
        new_status=str(status),
        old_as_of=str(previous.as_of) if previous else None,
        as_of=str(as_of),
    )
    # pushed only while the public may see it: published and not marked secret or private since
    if d.state is DecisionState.PUBLISHED and not is_restricted(
        session, case_id=d.case_id, record_id=d.record_id
    ):
        from archive.publicity.public import decision_entry

        r = session.exec(
            select(Redaction).where(Redaction.decision_id == d.id, Redaction.version == d.published_version)
        ).first()
        webhooks.enqueue(
            session,
            "decision.performance",
            d.ref,
            decision_entry(d, r, row),
            dispatcher=dispatcher,
            clock=clock,
        )
    return row


def history(session: Session, user: User, decision_id: str) -> list[DecisionPerformance]:
    """Every version, oldest first."""
    d = decisions.get(session, user, decision_id)  # publicity.read; 404 for an unknown decision
    return list(
        session.exec(
            select(DecisionPerformance)
            .where(DecisionPerformance.decision_id == d.id)
            .order_by(col(DecisionPerformance.version))
        )
    )


def current(session: Session, decision_id: str) -> DecisionPerformance | None:
    return session.exec(
        select(DecisionPerformance)
        .where(DecisionPerformance.decision_id == decision_id)
        .order_by(col(DecisionPerformance.version).desc())
    ).first()


def current_of(session: Session, decision_ids: Iterable[str]) -> dict[str, DecisionPerformance]:
    """The current version of each of ``decision_ids`` that has one (one query)."""
    ids = list(dict.fromkeys(decision_ids))
    if not ids:
        return {}
    newest = (
        select(DecisionPerformance.decision_id, func.max(DecisionPerformance.version).label("v"))
        .where(col(DecisionPerformance.decision_id).in_(ids))
        .group_by(col(DecisionPerformance.decision_id))
        .subquery()
    )
    rows = session.exec(
        select(DecisionPerformance).join(
            newest,
            (col(DecisionPerformance.decision_id) == newest.c.decision_id)
            & (col(DecisionPerformance.version) == newest.c.v),
        )
    ).all()
    return {r.decision_id: r for r in rows}


def to_public(session: Session, row: DecisionPerformance) -> PerformancePublic:
    d = session.get(Decision, row.decision_id)
    return PerformancePublic.model_validate(
        {
            **row.model_dump(),
            "decision_ref": d.ref if d else "",
            "status_label": PERFORMANCE_ZH[row.status],
        }
    )

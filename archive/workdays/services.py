"""The operator's calendar versions: read the one in force, set a new one with a reason."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, actor, authorize
from archive.accounts.models import User
from archive.clock import Clock, utcnow
from archive.i18n import _
from archive.workdays.calendar import WorkCalendar, default_calendar, parse_overrides
from archive.workdays.errors import InvalidCalendar
from archive.workdays.models import WorkdayCalendarVersion


def latest_version(session: Session) -> WorkdayCalendarVersion | None:
    return session.exec(
        select(WorkdayCalendarVersion).order_by(col(WorkdayCalendarVersion.version).desc()).limit(1)
    ).first()


def current_calendar(session: Session) -> WorkCalendar:
    """The calendar in force: the newest database version, else the shipped file."""
    row = latest_version(session)
    if row is None:
        return default_calendar()
    return WorkCalendar(parse_overrides(row.body), label=f"db v{row.version}")


def set_overrides(
    session: Session, user: User, body: dict[str, Any], reason: str, *, clock: Clock = utcnow
) -> WorkdayCalendarVersion:
    """Store a new version of the overrides (the whole document), logged as ``calendar.set``."""
    authorize(user, Permission.CALENDAR_SET)
    reason = reason.strip()
    if not reason:
        raise InvalidCalendar(_("a new calendar version needs a reason"))
    overrides = parse_overrides(body)
    latest = session.exec(select(func.max(WorkdayCalendarVersion.version))).one()
    version = int(latest or 0) + 1
    row = WorkdayCalendarVersion(
        version=version,
        body=overrides.to_json(),
        created_by=user.name,
        reason=reason,
        created_at=clock(),
    )
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="calendar.set",
        subject_type="calendar",
        subject_id=str(version),
        details={
            "reason": reason,
            "years": sorted(overrides.years),
            "days": [o.date.isoformat() for o in overrides.days],
        },
        clock=clock,
    )
    return row

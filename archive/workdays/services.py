"""The operator's calendar versions: read the one in force, set a new one with a reason (which
recomputes the provisional deadlines of the years it now knows), and the calendar's status with its
warnings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, actor, authorize
from archive.accounts.models import User
from archive.clock import Clock, utcnow
from archive.config import get_settings
from archive.i18n import _
from archive.workdays.calendar import WorkCalendar, default_calendar, local_date, parse_overrides
from archive.workdays.errors import InvalidCalendar
from archive.workdays.models import WorkdayCalendarVersion
from archive.workdays.provisional import (
    ProvisionalItem,
    Recomputed,
    YearWarning,
    provisional_items,
    recompute,
    year_warnings,
)


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


@dataclass(frozen=True)
class Installed:
    row: WorkdayCalendarVersion
    recomputed: Recomputed


def set_overrides(
    session: Session, user: User, body: dict[str, Any], reason: str, *, clock: Clock = utcnow
) -> WorkdayCalendarVersion:
    """:func:`install`, answering the stored version."""
    return install(session, user, body, reason, clock=clock).row


def install(
    session: Session, user: User, body: dict[str, Any], reason: str, *, clock: Clock = utcnow
) -> Installed:
    """Store a new version of the overrides (the whole document), logged as ``calendar.set``; then
    recompute every provisional deadline on it (:func:`archive.workdays.provisional.recompute`, one
    event per item changed)."""
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
            "warn_from": overrides.warn_from,
        },
        clock=clock,
    )
    cal = WorkCalendar(overrides, label=f"db v{version}")
    return Installed(row, recompute(session, cal, actor=actor(user), calendar_version=version, clock=clock))


@dataclass(frozen=True)
class CalendarStatus:
    label: str  # which data answers: "default v1", "db v3"
    version: int | None  # the database version in force (None: the shipped file)
    today: date  # agency-local
    warn_from: date  # this year's day from which a missing next year is warned about
    known: dict[int, bool]  # this year and the next two: known to the calendar?
    warnings: list[YearWarning]
    provisional: list[ProvisionalItem]  # live deadlines that are provisional


def calendar_warnings(
    session: Session, *, clock: Clock = utcnow, timezone: str | None = None
) -> list[YearWarning]:
    """The years the calendar should know by today and does not (for the oversight check and
    /healthz: no reader's permission needed, it names no case)."""
    tz = timezone or get_settings().timezone
    return year_warnings(current_calendar(session), local_date(clock(), tz))


def status(session: Session, *, clock: Clock = utcnow, timezone: str | None = None) -> CalendarStatus:
    """The calendar in force, the years it knows around today, its warnings and the provisional
    deadlines waiting for a year (`custody calendar status`)."""
    tz = timezone or get_settings().timezone
    cal = current_calendar(session)
    row = latest_version(session)
    today = local_date(clock(), tz)
    return CalendarStatus(
        label=cal.label,
        version=row.version if row is not None else None,
        today=today,
        warn_from=cal.warn_from(today.year),
        known={y: cal.knows_year(y) for y in range(today.year, today.year + 3)},
        warnings=year_warnings(cal, today),
        provisional=provisional_items(session),
    )

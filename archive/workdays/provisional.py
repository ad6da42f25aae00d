"""Deadlines in years the calendar does not know: provisional, shown as such, recomputed when the
year arrives, and warned about ahead of time.

Legal review (5 working days) and enforcement publicity (7 or 20) count on this calendar. A limit that
crosses a year the calendar does not know is never refused (enforcement would stop on 1 January at
every agency whose operator has not loaded the State Council's arrangement yet) and never guessed
silently: it gets a provisional due date (:meth:`archive.workdays.calendar.WorkCalendar.deadline`,
every day of the unknown year counted as a working day, so the real deadline is never earlier),
stored with the years that were missing, shown as provisional everywhere, and recomputed from its
original start by :func:`recompute` when an operator sets a calendar that knows the year.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, col, select

from archive import events
from archive.clock import Clock, as_utc, utcnow
from archive.config import get_settings
from archive.i18n import _
from archive.workdays.calendar import WorkCalendar, local_date

# What the operator runs: FILE is the whole override document (`custody calendar show` prints the one
# in force) with the year's arrangement added under "years".
FIX_COMMAND = "custody calendar set FILE --reason REASON --as ACCOUNT"


def _years(years: Iterable[int]) -> str:
    return _(", ").join(str(y) for y in sorted(years))


def note(years: Iterable[int]) -> str:
    """The words shown next to a provisional date ("" for an exact one)."""
    listed = sorted(years)
    if not listed:
        return ""
    return _("provisional: the {years} holiday arrangement is not loaded").format(years=_years(listed))


def explanation(years: Iterable[int]) -> str:
    """Why the provisional date is what it is (pages show it as the note's title, docs say the same)."""
    listed = sorted(years)
    if not listed:
        return ""
    return _(
        "every day of {years} is counted as a working day, so the real deadline is never earlier than "
        "this date; it is recomputed when the arrangement is loaded"
    ).format(years=_years(listed))


@dataclass(frozen=True)
class YearWarning:
    """A year the calendar should know by now and does not."""

    year: int
    since: date  # the day the warning began: ``warn_from`` of the year before, or 1 January
    message: str
    command: str = FIX_COMMAND


def year_warnings(cal: WorkCalendar, today: date) -> list[YearWarning]:
    """The current year if the calendar does not know it; the next year from ``warn_from`` (data in
    the override document, 1 November unless the operator sets another day) if it does not know it."""
    out: list[YearWarning] = []
    candidates = [(today.year, date(today.year, 1, 1))]
    if today >= cal.warn_from(today.year):
        candidates.append((today.year + 1, cal.warn_from(today.year)))
    for year, since in candidates:
        if not cal.knows_year(year):
            out.append(YearWarning(year, since, year_message(year)))
    return out


def year_message(year: int) -> str:
    """What a warning about a missing year says, with the command that fixes it."""
    return _(
        "the working-day calendar does not know {year}: deadlines that reach {year} are provisional "
        "(every day counted as a working day) until the State Council's {year} holiday arrangement is "
        'loaded; add it under "years" in the document `custody calendar show` prints and run: '
        "{command}"
    ).format(year=year, command=FIX_COMMAND)


@dataclass(frozen=True)
class ProvisionalItem:
    """A live deadline that is provisional (for the oversight warnings and the calendar status)."""

    kind: str  # "legal-review" or "publicity"
    subject_type: str  # "legal-submission" or "decision"
    subject_id: str
    case_id: str
    ref: str  # the decision's public reference, or "v<version>" of the proposed decision
    due: date
    weekdays_due: date | None
    missing_years: list[int]


def provisional_items(session: Session) -> list[ProvisionalItem]:
    """Pending legal reviews and unpublished decisions whose deadline is provisional, earliest first."""
    import archive.schema  # noqa: F401  (every table: the rows below have foreign keys to cases)
    from archive.legal.models import LegalSubmission, SubmissionState
    from archive.publicity.models import Decision, DecisionState

    items: list[ProvisionalItem] = []
    for s in session.exec(
        select(LegalSubmission).where(
            col(LegalSubmission.due_provisional).is_(True),
            col(LegalSubmission.state) == SubmissionState.PENDING,
        )
    ):
        if s.due is not None:
            items.append(
                ProvisionalItem(
                    "legal-review",
                    "legal-submission",
                    s.id,
                    s.case_id,
                    f"v{s.version}",
                    s.due,
                    s.due_weekdays,
                    list(s.due_missing_years),
                )
            )
    for d in session.exec(
        select(Decision).where(
            col(Decision.deadline_provisional).is_(True), col(Decision.state) == DecisionState.PENDING
        )
    ):
        items.append(
            ProvisionalItem(
                "publicity",
                "decision",
                d.id,
                d.case_id,
                d.ref,
                d.deadline,
                d.deadline_weekdays,
                list(d.deadline_missing_years),
            )
        )
    return sorted(items, key=lambda i: (i.due, i.kind, i.subject_id))


@dataclass(frozen=True)
class Recomputed:
    legal: int = 0
    publicity: int = 0

    @property
    def total(self) -> int:
        return self.legal + self.publicity


def recompute(
    session: Session,
    cal: WorkCalendar,
    *,
    actor: str,
    calendar_version: int | None,
    clock: Clock = utcnow,
) -> Recomputed:
    """Recompute every stored provisional deadline from its original start on ``cal`` (the calendar
    just set), whatever the item's state: a published decision's timeliness and a closed review's
    record depend on the real deadline too. Each change is a custody-log event on its item (old and
    new date, the calendar version); the provisional marker is cleared when no year is missing any
    more. Idempotent: an item whose answer did not change is left alone and logs nothing."""
    import archive.schema  # noqa: F401  (every table: the rows below have foreign keys to cases)
    from archive.legal.catalogue_versions import catalogue_version
    from archive.legal.models import LegalSubmission
    from archive.publicity.models import PUBLICATION_WORKING_DAYS, Decision

    timezone = get_settings().timezone
    legal = publicity = 0
    for s in session.exec(
        select(LegalSubmission)
        .where(col(LegalSubmission.due_provisional).is_(True))
        .order_by(col(LegalSubmission.submitted_at), col(LegalSubmission.id))
        .with_for_update()
    ).all():
        start = local_date(as_utc(s.submitted_at), timezone)
        n = catalogue_version(session, s.catalogue_version).review_working_days
        new = cal.deadline(start, n)
        if new.due == s.due and list(new.missing_years) == list(s.due_missing_years):
            continue
        old, old_years = s.due, list(s.due_missing_years)
        s.due, s.due_weekdays = new.due, new.weekdays_due
        s.due_provisional, s.due_missing_years = new.provisional, list(new.missing_years)
        s.calendar = cal.label
        session.add(s)
        events.record(
            session,
            actor=actor,
            action="legal.due.recompute",
            subject_type="case",
            subject_id=s.case_id,
            details={
                "submission": s.id,
                "version": s.version,
                "start": start.isoformat(),
                "working_days": n,
                "old_due": old.isoformat() if old else None,
                "old_missing_years": old_years,
                "new_due": new.due.isoformat(),
                "provisional": new.provisional,
                "missing_years": list(new.missing_years),
                "calendar": cal.label,
                "calendar_version": calendar_version,
            },
            clock=clock,
        )
        legal += 1
    for d in session.exec(
        select(Decision)
        .where(col(Decision.deadline_provisional).is_(True))
        .order_by(col(Decision.decided_on), col(Decision.id))
        .with_for_update()
    ).all():
        n = PUBLICATION_WORKING_DAYS[d.category]
        new = cal.deadline(d.decided_on, n)
        if new.due == d.deadline and list(new.missing_years) == list(d.deadline_missing_years):
            continue
        old, old_years = d.deadline, list(d.deadline_missing_years)
        d.deadline, d.deadline_weekdays = new.due, new.weekdays_due
        d.deadline_provisional, d.deadline_missing_years = new.provisional, list(new.missing_years)
        d.updated_at = clock()
        session.add(d)
        events.record(
            session,
            actor=actor,
            action="publicity.deadline.recompute",
            subject_type="decision",
            subject_id=d.id,
            details={
                "ref": d.ref,
                "decided_on": d.decided_on.isoformat(),
                "working_days": n,
                "old_deadline": old.isoformat(),
                "old_missing_years": old_years,
                "new_deadline": new.due.isoformat(),
                "provisional": new.provisional,
                "missing_years": list(new.missing_years),
                "calendar": cal.label,
                "calendar_version": calendar_version,
            },
            clock=clock,
        )
        publicity += 1
    session.flush()
    return Recomputed(legal, publicity)

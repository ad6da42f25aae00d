"""The calendar itself: library facts, then the operator's overrides; for a year neither knows, a
provisional count that is never later than the real one (see :meth:`WorkCalendar.deadline`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from archive.i18n import _
from archive.workdays.errors import CalendarGap, InvalidCalendar

DEFAULT_OVERRIDES_FILE = Path(__file__).with_name("default_overrides.json")
# A deadline further away than this is a bug in the caller, not a legal time limit.
MAX_WORKING_DAYS = 3660


class YearArrangement(BaseModel):
    """A whole year the library does not know, copied from the State Council's notice
    (国务院办公厅关于某年部分节假日安排的通知): rest days on weekdays and make-up working days on
    weekends. Every other Monday-Friday is a working day, every other Saturday/Sunday is not."""

    model_config = ConfigDict(extra="forbid")
    holidays: list[date]
    workdays: list[date] = []  # 调休: Saturdays or Sundays worked in exchange
    source: str = Field(min_length=1, max_length=500)  # the notice it was copied from


class DayOverride(BaseModel):
    """One day decided locally, overriding the library and the year's arrangement."""

    model_config = ConfigDict(extra="forbid")
    date: date
    working: bool
    reason: str = Field(min_length=1, max_length=500)


# From this day of a year (MM-DD), the next year missing from the calendar is warned about.
DEFAULT_WARN_FROM = "11-01"
_MONTH_DAY = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")


class Overrides(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(default=1, ge=1)
    title: str = ""
    years: dict[int, YearArrangement] = {}
    days: list[DayOverride] = []
    # From this day (MM-DD) of each year, a next year the calendar does not know is warned about
    # (oversight, `custody calendar status`, /healthz): data, set like the rest of the document.
    warn_from: str = DEFAULT_WARN_FROM

    @model_validator(mode="after")
    def _consistent(self) -> Overrides:
        for year, arrangement in self.years.items():
            if not 1900 <= year <= 2200:
                raise ValueError(f"year {year} is out of range")
            for d in [*arrangement.holidays, *arrangement.workdays]:
                if d.year != year:
                    raise ValueError(f"{d.isoformat()} is listed under the year {year}")
            both = set(arrangement.holidays) & set(arrangement.workdays)
            if both:
                raise ValueError(f"{min(both).isoformat()} is both a holiday and a working day in {year}")
        if not _MONTH_DAY.match(self.warn_from):
            raise ValueError(f"warn_from {self.warn_from!r} is not a month and day (MM-DD)")
        month, day = (int(x) for x in self.warn_from.split("-"))
        try:
            date(2001, month, day)  # not a leap year: 02-29 would not exist every year
        except ValueError as exc:
            raise ValueError(f"warn_from {self.warn_from!r} is not a day of every year") from exc
        seen = [o.date for o in self.days]
        if len(seen) != len(set(seen)):
            raise ValueError("a day is overridden twice")
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def warn_from_in(self, year: int) -> date:
        month, day = (int(x) for x in self.warn_from.split("-"))
        return date(year, month, day)


def parse_overrides(data: Any) -> Overrides:
    try:
        return Overrides.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidCalendar(
            _("calendar overrides are not valid: {problems}").format(problems=problems)
        ) from exc


def _library_is_workday(d: date) -> bool | None:
    """The library's answer, or None for a year it does not cover."""
    try:
        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:
        return None


@dataclass(frozen=True)
class Deadline:
    """The last day of a time limit counted in working days.

    ``missing_years`` empty: ``due`` is exact. Otherwise it is provisional: the limit crosses years
    the calendar does not know, and ``due`` counts every day of those years as a working day,
    weekends included. A holiday only makes the real deadline later and a make-up working weekend
    (调休) only makes it earlier, so no arrangement the State Council can publish makes the real
    deadline earlier than ``due``: the legal limit is never overrun because of the guess.
    ``weekdays_due`` is the same count with only Monday-Friday working (what the real deadline is
    when the year has neither holidays nor make-up days in the span), shown for information."""

    due: date
    missing_years: tuple[int, ...] = ()
    weekdays_due: date | None = None

    @property
    def provisional(self) -> bool:
        return bool(self.missing_years)


class WorkCalendar:
    """Working days in mainland China: day override > the operator's year arrangement > the
    library's published arrangement; otherwise :class:`CalendarGap`."""

    def __init__(self, overrides: Overrides | None = None, *, label: str = "library") -> None:
        self.overrides = overrides or Overrides()
        self.label = label  # which data answered: "library", "default v1", "db v3" (for explanations)
        self._days = {o.date: o.working for o in self.overrides.days}
        self._years = self.overrides.years
        self._holidays = {d for y in self._years.values() for d in y.holidays}
        self._workdays = {d for y in self._years.values() for d in y.workdays}

    def is_working_day(self, d: date) -> bool:
        if isinstance(d, datetime):  # a datetime is a date subclass; its day depends on a zone
            raise TypeError("is_working_day takes a date; convert with local_date() first")
        answer = self._known(d)
        if answer is None:
            raise CalendarGap(d.year)
        return answer

    def _assumed(self, d: date, missing: set[int], *, weekdays: bool = False) -> bool:
        """The day's answer, or for a year the calendar does not know (noted in ``missing``) the
        provisional one: every day working (the conservative count), or Monday-Friday."""
        answer = self._known(d)
        if answer is None:
            missing.add(d.year)
            return d.weekday() < 5 if weekdays else True
        return answer

    def _known(self, d: date) -> bool | None:
        if d in self._days:
            return self._days[d]
        if d.year in self._years:
            if d in self._workdays:
                return True
            if d in self._holidays:
                return False
            return d.weekday() < 5
        return _library_is_workday(d)

    def knows_year(self, year: int) -> bool:
        return year in self._years or _library_is_workday(date(year, 6, 30)) is not None

    def warn_from(self, year: int) -> date:
        """The day of ``year`` from which a next year the calendar does not know is warned about."""
        return self.overrides.warn_from_in(year)

    def add_working_days(self, start: date, n: int, *, provisional: bool = False) -> date:
        """The date ``n`` working days after ``start``: the day of ``start`` itself does not count
        (a limit starts the day after the event, as Chinese administrative time limits do), so
        5 working days after a Friday submission end on the next Friday when no holiday falls
        between. ``n == 0`` is ``start``. A year the calendar does not know raises
        :class:`CalendarGap`; with ``provisional=True`` its days all count (as in :meth:`deadline`)."""
        return self._add(start, n, set(), strict=not provisional)

    def _add(self, start: date, n: int, missing: set[int], *, strict: bool, weekdays: bool = False) -> date:
        if not 0 <= n <= MAX_WORKING_DAYS:
            raise InvalidCalendar(
                _("working days must be between 0 and {max}, not {n}").format(max=MAX_WORKING_DAYS, n=n)
            )
        d = start
        left = n
        while left:
            d += timedelta(days=1)
            working = self.is_working_day(d) if strict else self._assumed(d, missing, weekdays=weekdays)
            if working:
                left -= 1
        return d

    def deadline(self, start: date, n: int) -> Deadline:
        """``n`` working days after ``start`` (as :meth:`add_working_days`), never refused for a year
        the calendar does not know: then the answer is provisional and conservative (see
        :class:`Deadline`)."""
        missing: set[int] = set()
        due = self._add(start, n, missing, strict=False)
        if not missing:
            return Deadline(due)
        weekdays = self._add(start, n, missing, strict=False, weekdays=True)
        return Deadline(due, tuple(sorted(missing)), weekdays)

    def working_days_between(self, a: date, b: date, *, provisional: bool = False) -> int:
        """Working days in (a, b]: ``working_days_between(a, add_working_days(a, n)) == n``.
        Negative when ``b`` is before ``a``. With ``provisional=True`` a day of a year the calendar
        does not know counts as working (the count that matches a provisional :meth:`deadline`)."""
        if b < a:
            return -self.working_days_between(b, a, provisional=provisional)
        if (b - a).days > MAX_WORKING_DAYS * 2:
            raise InvalidCalendar(
                _("{a} to {b} is too long a span to count").format(a=a.isoformat(), b=b.isoformat())
            )
        count = 0
        d = a
        missing: set[int] = set()
        while d < b:
            d += timedelta(days=1)
            if self._assumed(d, missing) if provisional else self.is_working_day(d):
                count += 1
        return count


def load_default_overrides() -> Overrides:
    return parse_overrides(json.loads(DEFAULT_OVERRIDES_FILE.read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def default_calendar() -> WorkCalendar:
    """The library plus the shipped override file (no database)."""
    shipped = load_default_overrides()
    return WorkCalendar(shipped, label=f"default v{shipped.version}")


def is_working_day(d: date) -> bool:
    return default_calendar().is_working_day(d)


def add_working_days(start: date, n: int) -> date:
    return default_calendar().add_working_days(start, n)


def working_days_between(a: date, b: date) -> int:
    return default_calendar().working_days_between(a, b)


def local_date(moment: datetime, timezone: str = "Asia/Shanghai") -> date:
    """The calendar date of an instant in the agency's zone: legal deadlines are local dates."""
    if moment.tzinfo is None:
        raise ValueError("local_date needs a timezone-aware datetime")
    return moment.astimezone(ZoneInfo(timezone)).date()

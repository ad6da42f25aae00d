"""Deadlines that reach a year the calendar does not know: provisional (never refused), conservative
(never later than any arrangement could make them), warned about ahead of time, and recomputed from
their start when the operator sets the year.

The 2027 arrangement used here is a test fixture (calendar_2027_TEST_FIXTURE.json), invented: the
archive ships no 2027 data and these tests never pretend to know the State Council's notice."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from archive.accounts import services as accounts
from archive.accounts.models import Role
from archive.db import session_scope
from archive.errors import Forbidden
from archive.i18n import use_language
from archive.workdays import CalendarGap, WorkCalendar
from archive.workdays.calendar import Overrides, parse_overrides
from archive.workdays.errors import InvalidCalendar
from archive.workdays.provisional import FIX_COMMAND, note, year_warnings
from archive.workdays.services import install, status

FIXTURE_2027 = Path(__file__).with_name("calendar_2027_TEST_FIXTURE.json")
# 10:00 in Beijing on Wednesday 2 December 2026: "today" for these tests.
DEC_2 = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


def fixture_2027() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(FIXTURE_2027.read_text(encoding="utf-8"))
    assert "TEST FIXTURE" in body["title"] and "TEST FIXTURE" in body["years"]["2027"]["source"]
    return body


def test_a_limit_into_an_unknown_year_is_provisional_not_refused() -> None:
    library = WorkCalendar()
    assert not library.knows_year(2027)
    # Monday 28 December 2026 + 5: 29, 30, 31 December, then 1 and 2 January 2027 counted as working.
    d = library.deadline(date(2026, 12, 28), 5)
    assert (d.due, d.missing_years, d.weekdays_due, d.provisional) == (
        date(2027, 1, 2),
        (2027,),
        date(2027, 1, 4),  # Monday-Friday only: shown for information
        True,
    )
    # A limit inside known years is exact, as before.
    exact = library.deadline(date(2026, 12, 1), 5)
    assert (exact.due, exact.provisional, exact.weekdays_due) == (date(2026, 12, 8), False, None)
    # Counting back over the same span gives the same number of days, and never refuses.
    assert library.working_days_between(date(2026, 12, 28), d.due, provisional=True) == 5
    assert library.working_days_between(d.due, date(2027, 1, 4), provisional=True) == 2
    assert library.add_working_days(date(2026, 12, 28), 5, provisional=True) == d.due
    # The strict functions keep refusing: nothing that stores a deadline uses them any more.
    with pytest.raises(CalendarGap):
        library.add_working_days(date(2026, 12, 28), 5)
    with pytest.raises(CalendarGap):
        library.working_days_between(date(2026, 12, 28), date(2027, 1, 4))
    # Two missing years are both named.
    far = library.deadline(date(2026, 12, 20), 400)
    assert far.missing_years == (2027, 2028) and far.due < far.weekdays_due  # type: ignore[operator]


def _random_arrangement(rng: random.Random, year: int) -> Overrides:
    days = [date(year, 1, 1) + timedelta(days=i) for i in range(365)]
    weekdays = [d for d in days if d.weekday() < 5]
    weekends = [d for d in days if d.weekday() >= 5]
    holidays = rng.sample(weekdays, rng.randint(0, 30))
    workdays = rng.sample(weekends, rng.choice([0, 3, 10, 104]))  # up to every weekend worked
    return parse_overrides(
        {
            "years": {
                str(year): {
                    "holidays": sorted(h.isoformat() for h in holidays),
                    "workdays": sorted(w.isoformat() for w in workdays),
                    "source": "test: a random arrangement",
                }
            }
        }
    )


def test_the_provisional_date_is_never_later_than_any_arrangement_could_make_it() -> None:
    """The legal limit is never overrun because of the guess: whatever holidays and make-up working
    weekends (调休) the State Council publishes for 2027, the real deadline is on or after the
    provisional one (a make-up weekend moves it earlier than a Monday-Friday count would say)."""
    rng = random.Random(2027)
    library = WorkCalendar()
    starts = [date(2026, 12, 1) + timedelta(days=i) for i in range(31)] + [
        date(2027, 1, 15),
        date(2027, 2, 3),
    ]
    weekdays_too_late = 0
    for _ in range(60):
        real = WorkCalendar(_random_arrangement(rng, 2027))
        for start in starts:
            for n in (5, 7, 20):
                guess = library.deadline(start, n)
                actual = real.add_working_days(start, n)
                assert guess.due <= actual, (start, n)
                if guess.provisional and guess.weekdays_due is not None and guess.weekdays_due > actual:
                    weekdays_too_late += 1
    # A Monday-Friday count alone would have overrun the real limit in some of these arrangements.
    assert weekdays_too_late > 0


def test_warn_from_is_data_and_checked() -> None:
    assert Overrides().warn_from == "11-01"
    assert parse_overrides({"warn_from": "10-15"}).warn_from_in(2026) == date(2026, 10, 15)
    for bad in ("13-01", "11-1", "02-29", "1101", ""):
        with pytest.raises(InvalidCalendar):
            parse_overrides({"warn_from": bad})


def test_the_next_year_is_warned_about_from_warn_from() -> None:
    library = WorkCalendar()
    assert year_warnings(library, date(2026, 10, 31)) == []
    (w,) = year_warnings(library, date(2026, 11, 1))
    assert (w.year, w.since, w.command) == (2027, date(2026, 11, 1), FIX_COMMAND)
    assert "2027" in w.message and FIX_COMMAND in w.message
    early = WorkCalendar(parse_overrides({"warn_from": "09-01"}))
    assert [x.year for x in year_warnings(early, date(2026, 9, 1))] == [2027]
    # The current year missing is warned about whatever the day.
    assert [x.year for x in year_warnings(library, date(2027, 3, 1))] == [2027]
    known = WorkCalendar(parse_overrides(fixture_2027()))
    assert year_warnings(known, date(2026, 12, 2)) == []
    with use_language("zh_CN"):
        assert note([2027]) == "暂定，2027 年节假日安排未载入"
        assert "custody calendar set" in year_warnings(library, date(2026, 12, 2))[0].message
    with use_language("en"):
        assert note([2027]) == "provisional: the 2027 holiday arrangement is not loaded"
    assert note([]) == ""


def test_status_drives_the_clock_to_2_december_2026(engine: Engine) -> None:
    with session_scope(engine) as s:
        manager, _ = accounts.add_user(s, "rm", Role.RECORDS_MANAGER)
        officer, _ = accounts.add_user(s, "o1", Role.OFFICER)
    with Session(engine) as s:
        st = status(s, clock=lambda: DEC_2, timezone="Asia/Shanghai")
        assert st.today == date(2026, 12, 2) and st.warn_from == date(2026, 11, 1)
        assert st.known == {2026: True, 2027: False, 2028: False}
        assert [w.year for w in st.warnings] == [2027] and st.provisional == []
        october = status(s, clock=lambda: datetime(2026, 10, 20, tzinfo=UTC))
        assert october.warnings == []
    with pytest.raises(Forbidden), session_scope(engine) as s:
        install(s, officer, fixture_2027(), "2027")
    with session_scope(engine) as s:
        done = install(s, manager, fixture_2027(), "test fixture standing in for the 2027 notice")
        assert done.row.version == 1 and done.recomputed.total == 0
    with Session(engine) as s:
        st = status(s, clock=lambda: DEC_2)
        assert st.warnings == [] and st.known[2027] and st.label == "db v1"


def stand_in_years(engine: Engine, manager: str) -> None:
    """For tests on the real clock: the years around today that the holiday library does not know get
    a weekends-only stand-in (no calendar warning, no provisional deadline), whatever day they run."""
    from sqlmodel import select

    from archive.accounts.models import User

    this = datetime.now(UTC).year
    years = {
        str(y): {"holidays": [], "workdays": [], "source": "test stand-in (weekends only)"}
        for y in range(this - 1, this + 4)
        if not WorkCalendar().knows_year(y)
    }
    with session_scope(engine) as s:
        user = s.exec(select(User).where(User.name == manager)).one()
        install(s, user, {"years": years}, "tests run on the real clock")

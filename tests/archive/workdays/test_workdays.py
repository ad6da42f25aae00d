"""China's working-day calendar: statutory holidays, make-up working days (调休), operator
overrides kept as versioned data, and an explicit gap for years nobody has filled in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.accounts import services as accounts
from archive.accounts.models import Role
from archive.db import session_scope
from archive.errors import Forbidden, InvalidInput
from archive.models import Event
from archive.workdays import (
    CalendarGap,
    WorkCalendar,
    add_working_days,
    default_calendar,
    is_working_day,
    local_date,
    working_days_between,
)
from archive.workdays.calendar import load_default_overrides, parse_overrides
from archive.workdays.services import current_calendar, set_overrides

YEAR_2027 = {
    "years": {
        "2027": {
            "holidays": ["2027-01-01"],
            "workdays": [],
            "source": "test: a stand-in for the State Council's 2027 notice",
        }
    }
}


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2025, 1, 1), False),  # New Year
        (date(2025, 1, 26), True),  # Sunday worked for the Spring Festival
        (date(2025, 1, 28), False),  # Spring Festival eve, a holiday since 2025
        (date(2025, 2, 4), False),
        (date(2025, 2, 8), True),  # Saturday worked
        (date(2025, 10, 8), False),  # National Day and Mid-Autumn together, 8 days
        (date(2025, 10, 11), True),  # Saturday worked
        (date(2026, 1, 4), True),  # Sunday worked for New Year 2026
        (date(2026, 2, 14), True),  # Saturday worked for the Spring Festival
        (date(2026, 2, 16), False),
        (date(2026, 2, 23), False),
        (date(2026, 2, 28), True),
        (date(2026, 5, 9), True),
        (date(2026, 10, 7), False),
        (date(2026, 10, 10), True),
        (date(2026, 12, 1), True),  # an ordinary Tuesday
        (date(2026, 12, 5), False),  # an ordinary Saturday
    ],
)
def test_statutory_holidays_and_make_up_days(day: date, working: bool) -> None:
    assert is_working_day(day) is working


def test_deadlines_count_from_the_day_after() -> None:
    assert add_working_days(date(2026, 12, 1), 5) == date(2026, 12, 8)  # Tue -> next Tue
    assert add_working_days(date(2026, 11, 27), 5) == date(2026, 12, 4)  # Fri -> next Fri
    assert add_working_days(date(2026, 12, 1), 0) == date(2026, 12, 1)
    # National Day 2026: 1-7 October off, Saturday 10 October worked.
    assert add_working_days(date(2026, 9, 30), 5) == date(2026, 10, 13)
    # Spring Festival 2026: the make-up Saturday is the next working day after Friday 13 February.
    assert add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)
    assert add_working_days(date(2026, 2, 13), 2) == date(2026, 2, 24)
    # Twenty working days across the 2025 National Day week (publicity time limits, issue 14).
    assert add_working_days(date(2025, 9, 26), 20) == date(2025, 10, 30)


def test_between_is_the_inverse_of_add() -> None:
    start = date(2025, 1, 1)
    for offset in range(0, 700, 7):
        a = start + timedelta(days=offset)
        for n in (1, 5, 7, 20):
            b = add_working_days(a, n)
            assert working_days_between(a, b) == n
            assert working_days_between(b, a) == -n
    assert working_days_between(date(2026, 10, 1), date(2026, 10, 7)) == 0


def test_a_year_nobody_knows_is_an_explicit_gap() -> None:
    with pytest.raises(CalendarGap) as err:
        is_working_day(date(2027, 3, 1))
    assert err.value.year == 2027
    assert "2027" in str(err.value)
    assert isinstance(err.value, InvalidInput) and err.value.http_status == 422
    # A deadline that crosses into the unknown year fails instead of guessing.
    with pytest.raises(CalendarGap):
        add_working_days(date(2026, 12, 28), 5)
    assert not default_calendar().knows_year(2027)


def test_operator_fills_a_year_and_corrects_a_day() -> None:
    cal = WorkCalendar(parse_overrides(YEAR_2027))
    assert cal.knows_year(2027)
    assert not cal.is_working_day(date(2027, 1, 1))
    assert cal.is_working_day(date(2027, 1, 4))
    assert not cal.is_working_day(date(2027, 1, 2))  # a weekend not listed as worked
    assert cal.add_working_days(date(2026, 12, 28), 5) == date(2027, 1, 5)
    closure = WorkCalendar(
        parse_overrides({"days": [{"date": "2026-12-02", "working": False, "reason": "office closed"}]})
    )
    assert closure.add_working_days(date(2026, 12, 1), 5) == date(2026, 12, 9)
    make_up = WorkCalendar(
        parse_overrides({"days": [{"date": "2026-12-05", "working": True, "reason": "local make-up day"}]})
    )
    assert make_up.is_working_day(date(2026, 12, 5))


@pytest.mark.parametrize(
    "bad",
    [
        {"years": {"2027": {"holidays": ["2028-01-01"], "source": "x"}}},
        {"years": {"2027": {"holidays": ["2027-01-02"], "workdays": ["2027-01-02"], "source": "x"}}},
        {"years": {"2027": {"holidays": [], "source": ""}}},
        {"days": [{"date": "2026-12-02", "working": False, "reason": ""}]},
        {"days": [{"date": "2026-12-02", "working": False, "reason": "a"}] * 2},
        {"unknown": 1},
    ],
)
def test_bad_overrides_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        parse_overrides(bad)


def test_shipped_overrides_parse_and_a_datetime_is_refused() -> None:
    assert load_default_overrides().version >= 1
    with pytest.raises(TypeError):
        is_working_day(datetime(2026, 12, 1, tzinfo=UTC))
    # 23:30 UTC on 30 November is already 1 December in Beijing.
    assert local_date(datetime(2026, 11, 30, 23, 30, tzinfo=UTC)) == date(2026, 12, 1)


def test_versions_in_the_database_are_set_with_a_reason_and_logged(engine: Engine) -> None:
    with session_scope(engine) as session:
        manager, _ = accounts.add_user(session, "rm", Role.RECORDS_MANAGER)
        officer, _ = accounts.add_user(session, "o1", Role.OFFICER)
    with session_scope(engine) as session:
        with pytest.raises(CalendarGap):
            current_calendar(session).is_working_day(date(2027, 1, 4))
        with pytest.raises(Forbidden):
            set_overrides(session, officer, YEAR_2027, "2027 notice")
        with pytest.raises(InvalidInput):
            set_overrides(session, manager, YEAR_2027, "  ")
        row = set_overrides(session, manager, YEAR_2027, "State Council notice for 2027")
        assert row.version == 1
        set_overrides(session, manager, {**YEAR_2027, "days": []}, "same again")
    with Session(engine) as session:
        cal = current_calendar(session)
        assert cal.label == "db v2"
        assert cal.is_working_day(date(2027, 1, 4))
        logged = session.exec(select(Event).where(Event.action == "calendar.set")).all()
        assert [e.subject_id for e in logged] == ["1", "2"]
        assert logged[0].actor == "user:rm" and logged[0].details["years"] == [2027]

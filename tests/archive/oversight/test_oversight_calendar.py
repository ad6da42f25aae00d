"""The early-warning check warns ahead about a year the working-day calendar does not know (from
``warn_from``, 1 November by default) with the command that fixes it, and lists the live deadlines
that are provisional meanwhile; with the year loaded (a test fixture) both disappear."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from archive.db import session_scope
from archive.oversight import check
from archive.oversight import services as oversight
from archive.oversight.models import WarningKind
from archive.workdays import services as workdays
from archive.workdays.provisional import FIX_COMMAND
from tests.archive.legal.legal_factories import submit, world
from tests.archive.workdays.test_provisional import DEC_2, FIXTURE_2027


def _run(engine: Engine, at: datetime) -> oversight.WarningsPublic:
    with session_scope(engine) as s:
        check.run_check(s, unlinked_days=7, timezone="Asia/Shanghai", clock=lambda: at)
    with Session(engine) as s:
        return oversight.latest(s, oversight.WarningQuery())


def test_the_missing_year_is_warned_about_and_disappears_when_loaded(engine: Engine) -> None:
    w = world(engine)
    # Nothing to warn about on 31 October 2026 (before warn_from), however far 2027 is.
    october = _run(engine, datetime(2026, 10, 31, 2, tzinfo=UTC))
    assert october.counts[WarningKind.CALENDAR_YEAR] == 0
    # The clock driven to 2 December 2026: 2027 is not known.
    december = _run(engine, DEC_2)
    assert december.counts[WarningKind.CALENDAR_YEAR] == 1
    (year,) = [i for i in december.items if i.kind is WarningKind.CALENDAR_YEAR]
    assert (year.subject_type, year.subject_id) == ("calendar", "2027")
    assert year.label_zh == "工作日历缺少年度节假日安排"
    assert year.details == {"year": 2027, "since": "2026-11-01", "command": FIX_COMMAND}
    # A legal review submitted on 28 December reaches 2027: provisional, and listed as such.
    sub = submit(w, at=datetime(2026, 12, 28, 2, tzinfo=UTC))
    listed = _run(engine, datetime(2026, 12, 28, 3, tzinfo=UTC))
    (item,) = [i for i in listed.items if i.kind is WarningKind.PROVISIONAL_DEADLINE]
    assert (item.subject_type, item.subject_id, item.case_id, item.agency) == (
        "legal-submission",
        sub.id,
        w.case_id,
        "default",  # the case's agency
    )
    assert item.details == {
        "domain": "legal-review",
        "ref": "v1",
        "due": "2027-01-02",
        "weekdays_due": "2027-01-04",
        "missing_years": [2027],
    }
    with session_scope(engine) as s:
        body = json.loads(FIXTURE_2027.read_text(encoding="utf-8"))
        workdays.install(s, w.user("clerk"), body, "test fixture standing in for 2027")
    loaded = _run(engine, datetime(2026, 12, 28, 4, tzinfo=UTC))
    assert loaded.counts[WarningKind.CALENDAR_YEAR] == 0
    assert loaded.counts[WarningKind.PROVISIONAL_DEADLINE] == 0

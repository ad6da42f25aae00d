"""What an operator's Prometheus sees of the working-day calendar (issue: 2027 is not in the holiday
library): from 1 November the missing year is a gauge an alert fires on, and the deadlines counted
provisionally meanwhile are counted; loading the year clears both."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import yaml
from sqlalchemy.engine import Engine

from archive.db import session_scope
from archive.metrics import StateCollector
from archive.publicity import decisions
from archive.publicity.models import DecisionCategory, PartyKind
from archive.workdays import services as workdays
from tests.archive.publicity.publicity_factories import case_with_decision, fixed, roster_entry, users
from tests.archive.workdays.test_provisional import FIXTURE_2027
from tests.conftest import ROOT

TODAY = datetime(2026, 12, 21, 2, tzinfo=UTC)  # 10:00 in Beijing


def _gauges(engine: Engine, at: datetime) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in StateCollector(engine, clock=fixed(at)).collect():
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_a_missing_year_is_a_gauge_and_an_alert(engine: Engine) -> None:
    u = users(engine)
    with session_scope(engine) as s:
        roster_entry(s, u["admin"])
        case, _ = case_with_decision(s, u["records"], "2026-77", at=TODAY)
        decided = decisions.register(
            s,
            u["publisher"],
            decisions.DecisionInput(
                case_id=case,
                category=DecisionCategory.INSPECTION,  # 20 working days: into 2027
                decided_on=date(2026, 12, 21),
                party_kind=PartyKind.ORGANISATION,
                party_name="某某有限公司",
                conclusion="责令改正",
            ),
            clock=fixed(TODAY),
        )
        assert decided.deadline_provisional
    missing = ("custody_calendar_missing_years", ())
    waiting = ("custody_provisional_deadlines", (("kind", "publicity"),))
    legal = ("custody_provisional_deadlines", (("kind", "legal-review"),))
    # Seen in October, nothing is missing yet (the warning starts on 1 November).
    assert _gauges(engine, datetime(2026, 10, 20, 2, tzinfo=UTC))[missing] == 0
    now = _gauges(engine, TODAY)
    assert now[missing] == 1 and now[waiting] == 1 and now[legal] == 0
    # The shipped alert fires on exactly this gauge.
    rules = yaml.safe_load((ROOT / "deploy" / "monitoring" / "alerts.yml").read_text(encoding="utf-8"))
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r["alert"] == "CustodyCalendarYearMissing"]
    assert rule["expr"] == "max(custody_calendar_missing_years) > 0"
    # The operator loads 2027 (a test fixture standing in for the State Council's notice).
    fixture = json.loads(Path(FIXTURE_2027).read_text(encoding="utf-8"))
    with session_scope(engine) as s:
        workdays.install(s, u["records"], fixture, "test fixture standing in for 2027")
    after = _gauges(engine, TODAY)
    assert after[missing] == 0 and after[waiting] == 0

"""The early-warning check against a real database: the certificate hook, supersession of runs, and
coverage statistics, without the API."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import select

from archive.accounts import services as accounts
from archive.accounts.models import Role, User
from archive.cases import services as cases
from archive.cases.models import CaseKind, DocumentKind, Stage
from archive.coverage import services as coverage
from archive.db import session_scope
from archive.media.models import Media
from archive.oversight import check
from archive.oversight import services as oversight
from archive.oversight.models import OversightWarning, WarningKind
from tests.case_factories import T, media_row


def test_certificate_hook_runs_and_statistics(engine: Engine) -> None:
    media_row(engine, officer="0815", recorded_at=T - timedelta(minutes=1), duration_s=20 * 60)
    with session_scope(engine) as s:
        clerk, _ = accounts.add_user(s, "clerk", Role.RECORDS_MANAGER)
        case = cases.create_case(s, clerk, cases.CaseInput("W-1", "t", CaseKind.ADMINISTRATIVE))
        rec, linked = cases.add_record(
            s,
            clerk,
            case.id,
            cases.RecordInput(
                stage=Stage.INVESTIGATION,
                doc_kind=DocumentKind.INSPECTION_RECORD,
                author="0815",
                occurred_from=T,
                occurred_to=T + timedelta(minutes=15),
                body="现场检查",
                officers=["0815", "0816"],
            ),
        )
        assert len(linked) == 1
        coverage.set_activity(s, clerk, case.id, rec.record_id, "on-site-inspection")
    asked: list[tuple[list[str], date]] = []

    def roster(_s: object, badges: Iterable[str], on: date) -> dict[str, str]:
        asked.append((sorted(badges), on))
        return {"0816": "0816 is not in the enforcement roster"}

    clock = lambda: datetime(2024, 6, 30, 17, 0, tzinfo=UTC)  # noqa: E731 - 01:00 on 1 July in Shanghai
    with session_scope(engine) as s:
        run1 = check.run_check(s, unlinked_days=7, certificate_check=roster, clock=clock)
    assert asked == [(["0815", "0816"], date(2024, 7, 1))]  # the local date in the agency's zone
    assert run1.counts[WarningKind.NO_CERTIFICATE] == 1 and run1.counts[WarningKind.GAPS] == 0
    stats = {(r["agency"], r["officer"]): r for r in run1.stats}
    assert stats[("default", "0815")]["covered"] == 1 and stats[("default", "0815")]["coverage_rate"] == 1.0
    assert stats[("default", "0816")]["recordings"] == 0 and stats[("default", "0815")]["recordings"] == 1
    with session_scope(engine) as s:
        w = s.exec(select(OversightWarning).where(OversightWarning.kind == WarningKind.NO_CERTIFICATE)).one()
        assert (w.subject_type, w.subject_id, w.details["why"]) == (
            "officer",
            "0816",
            "0816 is not in the enforcement roster",
        )
        run2 = check.run_check(s, unlinked_days=7, certificate_check=lambda *_: {}, clock=clock)
        latest = oversight.latest(s, oversight.WarningQuery())
        assert latest.run_id == run2.id and latest.counts[WarningKind.NO_CERTIFICATE] == 0
        # Earlier runs stay on record.
        assert s.exec(select(OversightWarning).where(OversightWarning.run_id == run1.id)).first() is not None


def test_real_roster_warns_officers_without_a_valid_certificate(engine: Engine) -> None:
    """Without a certificate hook given, the check asks the publicity roster (issue 14) once it is in
    use: an officer whose certificate expired, and one not in the roster at all, are warned; an officer
    with a valid certificate is not; the date is today's in the agency's zone."""
    from archive.publicity import roster

    stray = media_row(engine, officer="0817", recorded_at=T, duration_s=60)
    with session_scope(engine) as s:
        item = s.get(Media, stray)
        assert item is not None
        item.received_at = T  # weeks before the run below, never linked: warned, and its officer checked
        s.add(item)
    with session_scope(engine) as s:
        admin, _ = accounts.add_user(s, "boss", Role.ADMIN)
        case = cases.create_case(s, admin, cases.CaseInput("W-R", "t", CaseKind.ADMINISTRATIVE))
        cases.add_record(
            s,
            admin,
            case.id,
            cases.RecordInput(
                stage=Stage.INVESTIGATION,
                doc_kind=DocumentKind.INSPECTION_RECORD,
                author="0815",
                occurred_from=T,
                occurred_to=T + timedelta(minutes=5),
                body="检查",
                officers=["0815", "0816"],
            ),
        )
    with session_scope(engine) as s:
        admin = s.exec(select(User).where(User.name == "boss")).one()
        for badge, cert, until in (("0815", "C-1", date(2030, 1, 1)), ("0816", "C-2", date(2024, 6, 30))):
            roster.add_entry(
                s,
                admin,
                roster.RosterInput(
                    officer=badge,
                    name=f"officer {badge}",
                    unit="unit-1",
                    certificate_no=cert,
                    category="行政执法",
                    area="本市",
                    valid_from=date(2020, 1, 1),
                    valid_to=until,
                ),
            )
    # 1 July 2024 01:00 in Shanghai: 0816's certificate ran out the day before.
    clock = lambda: datetime(2024, 6, 30, 17, 0, tzinfo=UTC)  # noqa: E731
    with session_scope(engine) as s:
        run = check.run_check(s, unlinked_days=7, clock=clock)
        warned = {
            w.subject_id: w.details["why"]
            for w in s.exec(
                select(OversightWarning).where(
                    OversightWarning.run_id == run.id, OversightWarning.kind == WarningKind.NO_CERTIFICATE
                )
            )
        }
    assert set(warned) == {"0816", "0817"}, warned
    assert "2024-06-30" in warned["0816"] and "not in the enforcement roster" in warned["0817"]

"""Issue 10, finding 1: auto-linking never widens anyone's access.

A reviewer wrote a record in their own case naming another officer with a window 1970-2100; the
rule linked that officer's unrelated recordings and the reviewer could download the originals.
Now: windows are bounded (``autolink_max_window_s``), the officers named must be on the case (a
records manager puts them there), and a link the rule makes for someone who could not already see
the media is pending until a person who may see it confirms it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.accounts import services as accounts
from archive.accounts.models import Role, User
from archive.cases import services as cases
from archive.cases.errors import InvalidRecord
from archive.cases.models import CaseKind, CaseMedia, DocumentKind, Stage
from archive.coverage import services as coverage
from archive.db import session_scope
from archive.errors import Forbidden, NotFound
from archive.media.models import Media
from archive.models import Event
from tests.case_factories import T, media_row

DAY = 86400.0


@pytest.fixture
def people(engine: Engine) -> dict[str, User]:
    with session_scope(engine) as s:
        clerk, _ = accounts.add_user(s, "clerk", Role.RECORDS_MANAGER)
        rev, _ = accounts.add_user(s, "rev", Role.REVIEWER)
        other, _ = accounts.add_user(s, "rev2", Role.REVIEWER)
    return {"clerk": clerk, "rev": rev, "rev2": other}


def _case(engine: Engine, clerk: User, reviewers: list[str]) -> str:
    with session_scope(engine) as s:
        return cases.create_case(
            s, clerk, cases.CaseInput("2024-9", "Theft", CaseKind.CRIMINAL, reviewers=reviewers)
        ).id


def _record(
    s: Session, user: User, case_id: str, start: datetime, end: datetime, officers: list[str]
) -> list[str]:
    _, linked = cases.add_record(
        s,
        user,
        case_id,
        cases.RecordInput(
            stage=Stage.INVESTIGATION,
            doc_kind=DocumentKind.REPORT,
            author="rev",
            occurred_from=start,
            occurred_to=end,
            body="report",
            officers=officers,
        ),
        buffer_s=300.0,
        max_window_s=DAY,
    )
    return linked


def _sees(engine: Engine, user: User, media_id: str) -> bool:
    with Session(engine) as s:
        item = s.get(Media, media_id)
        assert item is not None
        return cases.media_visible(s, user, item)


def test_the_attack_a_window_1970_to_2100_is_refused_naming_the_limit(
    engine: Engine, people: dict[str, User]
) -> None:
    case_id = _case(engine, people["clerk"], ["rev"])
    unrelated = media_row(engine, officer="9999", device="BC-9999", recorded_at=T)
    with session_scope(engine) as s:
        cases.add_case_officer(s, people["clerk"], case_id, "9999", "was at the scene")
    with pytest.raises(InvalidRecord, match="24 h"), session_scope(engine) as s:
        _record(
            s,
            people["rev"],
            case_id,
            datetime(1970, 1, 1, tzinfo=UTC),
            datetime(2100, 1, 1, tzinfo=UTC),
            ["9999"],
        )
    assert not _sees(engine, people["rev"], unrelated)


def test_a_reviewer_may_not_name_an_officer_who_is_not_on_the_case(
    engine: Engine, people: dict[str, User]
) -> None:
    case_id = _case(engine, people["clerk"], ["rev"])
    unrelated = media_row(engine, officer="9999", device="BC-9999", recorded_at=T)
    with pytest.raises(InvalidRecord, match="not on case"), session_scope(engine) as s:
        _record(s, people["rev"], case_id, T, T + timedelta(hours=1), ["9999"])
    assert not _sees(engine, people["rev"], unrelated)


def test_only_a_records_manager_puts_officers_on_a_case(engine: Engine, people: dict[str, User]) -> None:
    case_id = _case(engine, people["clerk"], ["rev"])
    with pytest.raises(Forbidden), session_scope(engine) as s:
        cases.add_case_officer(s, people["rev"], case_id, "9999", "me")
    with session_scope(engine) as s:
        cases.add_case_officer(s, people["clerk"], case_id, "9999", "was at the scene")
        assert [o.badge for o in cases.case_officers(s, people["rev"], case_id)] == ["9999"]
        ev = s.exec(select(Event).where(Event.action == "case.officer.add")).one()
        assert ev.subject_id == case_id and ev.details["badge"] == "9999"


def test_a_link_the_writer_could_not_see_is_pending_until_confirmed(
    engine: Engine, people: dict[str, User]
) -> None:
    case_id = _case(engine, people["clerk"], ["rev"])
    hit = media_row(engine, officer="9999", device="BC-9999", recorded_at=T + timedelta(minutes=5))
    with session_scope(engine) as s:
        cases.add_case_officer(s, people["clerk"], case_id, "9999", "was at the scene")
    with session_scope(engine) as s:
        assert _record(s, people["rev"], case_id, T, T + timedelta(hours=1), ["9999"]) == [hit]
    with Session(engine) as s:
        link = s.exec(select(CaseMedia).where(CaseMedia.media_id == hit)).one()
        assert link.pending and link.confirmed_by is None
    assert not _sees(engine, people["rev"], hit)
    # A reviewer cannot confirm (they could not see it); a records manager, who can, does.
    with pytest.raises(Forbidden), session_scope(engine) as s:
        cases.confirm_link(s, people["rev"], case_id, hit)
    with session_scope(engine) as s:
        confirmed = cases.confirm_link(s, people["clerk"], case_id, hit)
        assert not confirmed.pending and confirmed.confirmed_by == "user:clerk"
        assert s.exec(select(Event).where(Event.action == "case.link.confirm")).one().subject_id == hit
    assert _sees(engine, people["rev"], hit)
    with pytest.raises(NotFound), session_scope(engine) as s:
        cases.confirm_link(s, people["clerk"], case_id, hit)  # nothing pending any more


def test_a_writer_who_sees_the_media_makes_confirmed_links(engine: Engine, people: dict[str, User]) -> None:
    case_id = _case(engine, people["clerk"], ["rev"])
    hit = media_row(engine, officer="0815", recorded_at=T + timedelta(minutes=5))
    with session_scope(engine) as s:  # the records manager names the officer: on the case at once
        assert _record(s, people["clerk"], case_id, T, T + timedelta(hours=1), ["0815"]) == [hit]
        assert [o.badge for o in cases.case_officers(s, people["clerk"], case_id)] == ["0815"]
    with Session(engine) as s:
        assert not s.exec(select(CaseMedia).where(CaseMedia.media_id == hit)).one().pending
    assert _sees(engine, people["rev"], hit)


def test_links_made_when_the_recording_is_archived_are_pending_for_a_reviewers_record(
    engine: Engine, people: dict[str, User]
) -> None:
    case_id = _case(engine, people["clerk"], ["rev"])
    with session_scope(engine) as s:
        cases.add_case_officer(s, people["clerk"], case_id, "9999", "was at the scene")
    with session_scope(engine) as s:
        assert _record(s, people["rev"], case_id, T, T + timedelta(hours=1), ["9999"]) == []
    late = media_row(engine, officer="9999", device="BC-9999", recorded_at=T + timedelta(minutes=5))
    with session_scope(engine) as s:
        item = s.get(Media, late)
        assert item is not None
        assert cases.autolink_media(s, item, buffer_s=300.0) == [case_id]
    with Session(engine) as s:
        assert s.exec(select(CaseMedia).where(CaseMedia.media_id == late)).one().pending
    assert not _sees(engine, people["rev"], late)


def test_the_rule_uses_only_officers_still_on_the_case(engine: Engine, people: dict[str, User]) -> None:
    case_id = _case(engine, people["clerk"], ["rev"])
    with session_scope(engine) as s:
        cases.add_case_officer(s, people["clerk"], case_id, "9999", "was at the scene")
        _record(s, people["clerk"], case_id, T, T + timedelta(hours=1), ["9999"])
        cases.remove_case_officer(s, people["clerk"], case_id, "9999", "named by mistake")
    late = media_row(engine, officer="9999", device="BC-9999", recorded_at=T + timedelta(minutes=5))
    with session_scope(engine) as s:
        item = s.get(Media, late)
        assert item is not None
        assert cases.autolink_media(s, item, buffer_s=300.0) == []


def test_a_closed_case_is_read_only_until_reopened(engine: Engine, people: dict[str, User]) -> None:
    """Issue 10, finding 4 (in part): anyone who could write to a case could write to a closed one."""
    from archive.cases.errors import CaseClosed
    from archive.cases.models import CaseStatus

    case_id = _case(engine, people["clerk"], ["rev"])
    item = media_row(engine, officer="0815", recorded_at=T)
    with session_scope(engine) as s:
        cases.update_case(s, people["clerk"], case_id, cases.CaseChange(status=CaseStatus.CLOSED))
    for who in ("rev", "clerk"):
        with pytest.raises(CaseClosed, match="closed"), session_scope(engine) as s:
            _record(s, people[who], case_id, T, T + timedelta(hours=1), [])
    with pytest.raises(CaseClosed), session_scope(engine) as s:
        cases.link_media(s, people["clerk"], case_id, item, "late evidence")
    with session_scope(engine) as s:
        cases.update_case(s, people["clerk"], case_id, cases.CaseChange(status=CaseStatus.OPEN))
        reopened = [e.details for e in s.exec(select(Event).where(Event.action == "case.update"))]
        assert len(reopened) == 2
    with session_scope(engine) as s:
        assert _record(s, people["rev"], case_id, T, T + timedelta(hours=1), []) == []


def test_a_pending_link_covers_nothing_until_confirmed(engine: Engine, people: dict[str, User]) -> None:
    """Coverage (and the early-warning check, and the export) counts a recording only through a
    confirmed link: a pending one is not shown, streamed or exported, so it cannot be the record's
    recording either."""
    case_id = _case(engine, people["clerk"], ["rev"])
    hit = media_row(engine, officer="9999", device="BC-9999", recorded_at=T + timedelta(minutes=5))
    with session_scope(engine) as s:
        cases.add_case_officer(s, people["clerk"], case_id, "9999", "was at the scene")
    with session_scope(engine) as s:
        assert _record(s, people["rev"], case_id, T, T + timedelta(hours=1), ["9999"]) == [hit]
    with Session(engine) as s:
        assert [r.media_id for r in coverage.case_recordings(s, case_id, people["clerk"])] == []
    with session_scope(engine) as s:
        cases.confirm_link(s, people["clerk"], case_id, hit)
    with Session(engine) as s:
        assert [r.media_id for r in coverage.case_recordings(s, case_id, people["clerk"])] == [hit]

"""Cases, records, links, search and access through the real API (uvicorn, PostgreSQL, Redis),
plus full-text search on the embedded SQLite default."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, func, select

from archive.accounts import services as accounts
from archive.accounts.models import Role
from archive.cases import services as cases
from archive.cases.models import Case, CaseKind, CaseMedia, DocumentKind, Stage, TextRecord
from archive.config import Settings
from archive.db import make_engine, session_scope
from archive.models import Event
from migrations import migrate
from tests.case_factories import T, auth, media_row, new_case, record_body
from tests.conftest import LiveAPI

SCRIPT = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def _count(engine: Engine, model: Any) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def test_case_records_and_versions_through_the_api(live_api: LiveAPI, make_user: Any, engine: Engine) -> None:
    clerk = make_user("clerk", "records-manager")
    make_user("rev1", "reviewer")
    url = live_api.url
    case = new_case(url, clerk, reviewers=["rev1"], stage="investigation")
    assert case["reviewers"] == ["rev1"] and case["stage"] == "investigation"
    r = httpx.post(
        f"{url}/api/v1/cases/{case['id']}/records",
        json=record_body(T, T + timedelta(minutes=20), ["0815"], body="v1: " + SCRIPT),
        headers=auth(clerk),
    )
    assert r.status_code == 201, r.text
    rec = r.json()["record"]
    assert rec["body"] == "v1: " + SCRIPT  # stored as written: it is evidence; the page escapes it
    v2 = httpx.post(
        f"{url}/api/v1/cases/{case['id']}/records/{rec['record_id']}/versions",
        json=record_body(T, T + timedelta(minutes=25), ["0815"], body="v2: corrected end time"),
        headers=auth(clerk),
    )
    assert v2.status_code == 201 and v2.json()["record"]["version"] == 2
    latest = httpx.get(f"{url}/api/v1/cases/{case['id']}/records", headers=auth(clerk)).json()
    assert [x["body"] for x in latest] == ["v2: corrected end time"]
    versions = httpx.get(
        f"{url}/api/v1/cases/{case['id']}/records/{rec['record_id']}", headers=auth(clerk)
    ).json()
    assert [(x["version"], x["body"][:3]) for x in versions] == [(1, "v1:"), (2, "v2:")]
    # Append-only in the database itself, not only in the API.
    with Session(engine) as s, pytest.raises(DBAPIError, match="append-only"):
        s.execute(text("UPDATE case_records SET body = 'rewritten'"))
    with Session(engine) as s:
        actions = [e.action for e in s.exec(select(Event).order_by(Event.id))]
    assert {"case.create", "record.create", "record.version", "case.records"} <= set(actions)


def test_bad_input_is_refused_and_changes_nothing(live_api: LiveAPI, make_user: Any, engine: Engine) -> None:
    clerk = make_user("clerk", "records-manager")
    make_user("rev1", "reviewer")
    rev2 = make_user("rev2", "reviewer")
    url = live_api.url
    case = new_case(url, clerk, number="A-1", reviewers=["rev1"])
    other = new_case(url, clerk, number="A-2")
    before = {m: _count(engine, m) for m in (Case, TextRecord, CaseMedia, Event)}

    dup = httpx.post(
        f"{url}/api/v1/cases",
        json={"number": "A-1", "title": "again", "kind": "criminal"},
        headers=auth(clerk),
    )
    assert dup.status_code == 409 and "already exists" in dup.json()["detail"]
    rec_url = f"{url}/api/v1/cases/{case['id']}/records"
    backwards = httpx.post(rec_url, json=record_body(T, T - timedelta(seconds=1), []), headers=auth(clerk))
    assert backwards.status_code == 400 and "before occurred_from" in backwards.json()["detail"]
    stage = httpx.post(rec_url, json=record_body(T, T, [], stage="trial"), headers=auth(clerk))
    assert stage.status_code == 422 and "stage" in stage.json()["detail"]
    too_long = httpx.post(rec_url, json=record_body(T, T, [], body="x" * 200_001), headers=auth(clerk))
    assert too_long.status_code == 400 and "limit is 200000" in too_long.json()["detail"]
    huge = httpx.post(rec_url, json=record_body(T, T, [], body="x" * 2_000_000), headers=auth(clerk))
    assert huge.status_code == 413
    # (A time without an offset is not bad input: it is the agency's local time, see
    # tests/archive/test_localtime.py.)
    bad_badge = httpx.post(rec_url, json=record_body(T, T, ["<b>x</b>"]), headers=auth(clerk))
    assert bad_badge.status_code == 400
    # A reviewer not assigned to a case cannot see it, let alone link to it or write in it.
    mid = media_row(engine, recorded_at=T)
    hidden = httpx.post(
        f"{url}/api/v1/cases/{other['id']}/media",
        json={"media_id": mid, "reason": "mine"},
        headers=auth(rev2),
    )
    assert hidden.status_code == 404
    assert httpx.get(f"{url}/api/v1/cases/{other['id']}", headers=auth(rev2)).status_code == 404
    no_reason = httpx.post(
        f"{url}/api/v1/cases/{case['id']}/media", json={"media_id": mid, "reason": ""}, headers=auth(clerk)
    )
    assert no_reason.status_code == 422
    not_a_clerk = httpx.post(
        f"{url}/api/v1/cases", json={"number": "R-1", "title": "t", "kind": "criminal"}, headers=auth(rev2)
    )
    assert not_a_clerk.status_code == 403

    assert {m: _count(engine, m) for m in (Case, TextRecord, CaseMedia)} == {
        m: before[m] for m in (Case, TextRecord, CaseMedia)
    }
    with Session(engine) as s:
        new_events = s.exec(select(Event).where(Event.id > before[Event])).all()
    # Only refusals (403) and reads were logged; nothing that records a change.
    assert {e.action for e in new_events} <= {"access.denied", "auth.denied"}


def test_links_access_and_media_visibility(live_api: LiveAPI, make_user: Any, engine: Engine) -> None:
    clerk = make_user("clerk", "records-manager")
    officer = make_user("0815", "officer")
    rev1 = make_user("rev1", "reviewer")
    rev2 = make_user("rev2", "reviewer")
    auditor = make_user("aud", "auditor")
    admin = make_user("boss", "admin")
    url = live_api.url
    a = new_case(url, clerk, number="B-1", reviewers=["rev1"])
    b = new_case(url, clerk, number="B-2", reviewers=["rev2"])
    in_window = media_row(engine, recorded_at=T + timedelta(minutes=2))
    loose = media_row(engine, recorded_at=T + timedelta(days=3))

    # Issue 10: a records manager puts the officer on the case; the reviewer's record then links
    # the officer's recording pending, and the reviewer sees it once the records manager confirms.
    on_case = httpx.post(
        f"{url}/api/v1/cases/{a['id']}/officers",
        json={"badge": "0815", "reason": "made the stop"},
        headers=auth(clerk),
    )
    assert on_case.status_code == 201, on_case.text
    created = httpx.post(
        f"{url}/api/v1/cases/{a['id']}/records",
        json=record_body(T, T + timedelta(minutes=10), ["0815"]),
        headers=auth(rev1),  # an assigned reviewer may add records
    )
    assert created.status_code == 201 and created.json()["linked_media"] == [in_window]
    assert httpx.get(f"{url}/api/v1/media/{in_window}", headers=auth(rev1)).status_code == 404
    confirmed = httpx.post(f"{url}/api/v1/cases/{a['id']}/media/{in_window}/confirm", headers=auth(clerk))
    assert confirmed.status_code == 200, confirmed.text

    def media_ids(token: str, **params: str) -> set[str]:
        r = httpx.get(f"{url}/api/v1/media", headers=auth(token), params=params)
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()["items"]}

    assert media_ids(rev1) == {in_window}
    assert media_ids(rev2) == set()
    assert (
        media_ids(officer) == media_ids(clerk) == media_ids(admin) == media_ids(auditor) == {in_window, loose}
    )
    assert media_ids(clerk, linked="false") == {loose} and media_ids(clerk, linked="true") == {in_window}
    assert httpx.get(f"{url}/api/v1/media/{loose}", headers=auth(rev1)).status_code == 404
    assert httpx.get(f"{url}/api/v1/media/{in_window}", headers=auth(rev1)).status_code == 200

    # Cases: reviewers see their own; auditors and admins all; officers none.
    def case_numbers(token: str) -> set[str]:
        return {c["number"] for c in httpx.get(f"{url}/api/v1/cases", headers=auth(token)).json()["items"]}

    assert case_numbers(rev1) == {"B-1"} and case_numbers(rev2) == {"B-2"}
    assert case_numbers(auditor) == case_numbers(admin) == {"B-1", "B-2"}
    assert case_numbers(officer) == set()
    assert case_numbers(clerk) == {"B-1", "B-2"}
    found = httpx.get(f"{url}/api/v1/cases", headers=auth(auditor), params={"officer": "0815"}).json()
    assert [c["number"] for c in found["items"]] == ["B-1"]
    ranged = httpx.get(
        f"{url}/api/v1/cases",
        headers=auth(auditor),
        params={
            "since": (T + timedelta(minutes=9)).isoformat(),
            "until": (T + timedelta(hours=1)).isoformat(),
        },
    ).json()
    assert [c["number"] for c in ranged["items"]] == ["B-1"]
    assert (
        httpx.get(f"{url}/api/v1/cases", headers=auth(auditor), params={"stage": "decision"}).json()["total"]
        == 0
    )

    # rev2 cannot link media it cannot see (404) to its own case; the clerk can, with a reason.
    assert (
        httpx.post(
            f"{url}/api/v1/cases/{b['id']}/media", json={"media_id": loose, "reason": "x"}, headers=auth(rev2)
        ).status_code
        == 404
    )
    ok = httpx.post(
        f"{url}/api/v1/cases/{b['id']}/media",
        json={"media_id": loose, "reason": "same driver, second stop"},
        headers=auth(clerk),
    )
    assert ok.status_code == 201 and ok.json()["source"] == "manual"
    assert media_ids(rev2) == {loose}
    # Unlinking needs a reason and a second person (issue 10, finding 4); then the reviewer's access goes.
    asked = httpx.post(
        f"{url}/api/v1/cases/{b['id']}/media/{loose}/unlink",
        json={"reason": "linked by mistake"},
        headers=auth(clerk),
    )
    assert asked.status_code == 202 and asked.json()["state"] == "pending", asked.text
    assert media_ids(rev2) == {loose}
    admin = make_user("root", "admin")
    gone = httpx.post(f"{url}/api/v1/approvals/{asked.json()['id']}/approve", json={}, headers=auth(admin))
    assert gone.status_code == 200 and gone.json()["state"] == "approved", gone.text
    assert media_ids(rev2) == set()
    # Auditors read but change nothing.
    assert (
        httpx.post(
            f"{url}/api/v1/cases/{b['id']}/media",
            json={"media_id": loose, "reason": "x"},
            headers=auth(auditor),
        ).status_code
        == 403
    )
    history = httpx.get(
        f"{url}/api/v1/cases/{b['id']}/media", headers=auth(auditor), params={"include_unlinked": "true"}
    ).json()
    assert [(h["reason"], h["unlink_reason"]) for h in history] == [
        ("same driver, second stop", "linked by mistake")
    ]


def test_full_text_search_on_postgresql(live_api: LiveAPI, make_user: Any) -> None:
    clerk = make_user("clerk", "records-manager")
    make_user("rev1", "reviewer")
    rev2 = make_user("rev2", "reviewer")
    url = live_api.url
    a = new_case(url, clerk, number="S-1", reviewers=["rev1"])
    b = new_case(url, clerk, number="S-2", reviewers=["rev2"])
    for case, body in (
        (a, "Driver refused the breathalyser; smell of alcohol."),
        (b, "Breathalyser 0.0 per mille."),
    ):
        httpx.post(
            f"{url}/api/v1/cases/{case['id']}/records",
            json=record_body(T, T, [], body=body),
            headers=auth(clerk),
        ).raise_for_status()

    def search(token: str, q: str) -> list[str]:
        r = httpx.get(f"{url}/api/v1/records/search", headers=auth(token), params={"q": q})
        assert r.status_code == 200, r.text
        return [x["case_id"] for x in r.json()]

    assert sorted(search(clerk, "BREATHALYSER")) == sorted([a["id"], b["id"]])
    assert search(clerk, "alcohol driver") == [a["id"]]
    assert search(rev2, "breathalyser") == [b["id"]]  # only cases the caller may see
    assert search(clerk, "\"') OR 1=1 --") == []  # quotes and operators are just words here
    assert (
        httpx.get(f"{url}/api/v1/records/search", headers=auth(clerk), params={"q": "!!"}).status_code == 400
    )


def test_full_text_search_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    migrate(Settings(database_url=url))
    engine = make_engine(url)
    with session_scope(engine) as s:
        clerk, _ = accounts.add_user(s, "clerk", Role.RECORDS_MANAGER)
        case = cases.create_case(s, clerk, cases.CaseInput("E-1", "Embedded", CaseKind.ADMINISTRATIVE))
        for body in ("Noise complaint, loud music after midnight.", "Parking ticket served in person."):
            cases.add_record(
                s,
                clerk,
                case.id,
                cases.RecordInput(Stage.FILING, DocumentKind.NOTICE, "0815", T, T, body),
            )
    with session_scope(engine) as s:
        hits = cases.search_records(s, clerk, 'MUSIC "midnight')
        assert [h.body[:5] for h in hits] == ["Noise"]
        assert cases.search_records(s, clerk, "served") and not cases.search_records(s, clerk, "alcohol")
    with Session(engine) as s, pytest.raises(DBAPIError, match="append-only"):
        s.execute(text("DELETE FROM case_records"))
    engine.dispose()


def test_case_moves_through_the_stages(live_api: LiveAPI, make_user: Any, engine: Engine) -> None:
    clerk = make_user("clerk", "records-manager")
    rev1 = make_user("rev1", "reviewer")
    url = live_api.url
    case = new_case(url, clerk, number="P-1", reviewers=["rev1"])
    assert case["stage"] == "filing"
    at = f"{url}/api/v1/cases/{case['id']}"
    moved = httpx.patch(at, json={"stage": "evidence-collection"}, headers=auth(clerk))
    assert moved.status_code == 200 and moved.json()["stage"] == "evidence-collection"
    by_stage = httpx.get(f"{url}/api/v1/cases", headers=auth(rev1), params={"stage": "evidence-collection"})
    assert [c["number"] for c in by_stage.json()["items"]] == ["P-1"]
    # Refused: a reviewer changing the case, an unknown stage, an empty title; nothing changes.
    assert httpx.patch(at, json={"stage": "decision"}, headers=auth(rev1)).status_code == 403
    assert httpx.patch(at, json={"stage": "trial"}, headers=auth(clerk)).status_code == 422
    assert httpx.patch(at, json={"title": ""}, headers=auth(clerk)).status_code == 422
    closed = httpx.patch(at, json={"status": "closed"}, headers=auth(clerk)).json()
    assert (closed["stage"], closed["status"], closed["title"]) == (
        "evidence-collection",
        "closed",
        case["title"],
    )
    with Session(engine) as s:
        evs = s.exec(select(Event).where(Event.action == "case.update").order_by(Event.id)).all()
    assert [(e.details["before"], e.details["after"]) for e in evs] == [
        ({"stage": "filing"}, {"stage": "evidence-collection"}),
        ({"status": "open"}, {"status": "closed"}),
    ]

"""Provisional deadlines over HTTP (in-process): when the calendar does not know the year a limit
reaches, legal-review submissions and publicity registrations are accepted (never a 422), and every
answer that shows the due date says it is provisional; the oversight run and /healthz warn about the
missing year. Each changed endpoint is tried by every role that may and each that may not use it.

The API runs on the real clock, so the test makes the holiday library forget the current year and
those after it (the situation of 1 January at an agency that never loaded the new year): every
deadline counted from today is then provisional, whatever day the test runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from archive.access import ROLE_PERMISSIONS, Permission
from archive.accounts.models import Role
from archive.clock import utcnow
from archive.db import session_scope
from archive.workdays import calendar as workday_calendar
from archive.workdays import local_date
from archive.workdays.provisional import FIX_COMMAND
from tests.api.test_approvals_api import ROLES, Sent
from tests.api.test_legal_api import proposal
from tests.archive.legal.legal_factories import World, make_case, make_users
from tests.archive.publicity.publicity_factories import case_with_decision
from tests.case_factories import auth

TODAY = local_date(utcnow())


@pytest.fixture
def client(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    known = workday_calendar._library_is_workday

    def forgetful(d: date) -> bool | None:
        return None if d.year >= TODAY.year else known(d)

    monkeypatch.setattr(workday_calendar, "_library_is_workday", forgetful)
    app = create_app()
    app.state.dispatcher = Sent()
    with TestClient(app) as c:
        yield c


NAMES = {
    "officer": "off1",
    "reviewer": "rev1",
    "auditor": "aud",
    "records-manager": "clerk",
    "admin": "root",
    "approver": "appr",
    "legal-reviewer": "lr1",
    "publisher": "pub",
}


def may(role: str, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[Role(role)]


def test_provisional_deadlines_by_role(client: TestClient, engine: Engine, make_user: Any) -> None:
    c = client
    users, tokens = make_users(engine)
    tokens["pub"] = make_user("pub", "publisher")
    case_id, report, document, media = make_case(engine, users)
    w = World(engine, users, tokens, case_id, report, document, media)
    tok = {role: tokens[name] for role, name in NAMES.items()}
    note = f"provisional: the {TODAY.year} holiday arrangement is not loaded"

    # Submitting a proposed decision: accepted with a provisional due date, never a 422.
    submitted: list[dict[str, Any]] = []
    for role in ROLES:
        body = proposal(w, amends=submitted[-1]["version"] if submitted else None)
        r = c.post(f"/api/v1/cases/{case_id}/legal-review/submissions", json=body, headers=auth(tok[role]))
        if may(role, Permission.LEGAL_SUBMIT):
            assert r.status_code == 201, (role, r.text)
            sub = r.json()
            assert sub["due_provisional"] is True and sub["due_missing_years"] == [TODAY.year], role
            assert sub["due_note"] == note and sub["due"] <= sub["due_weekdays"]
            submitted.append(sub)
        else:
            assert r.status_code == 403, (role, r.text)
    assert len(submitted) == 3  # reviewer, records manager, admin

    # A case's review: the due date says it is provisional, in the reader's language.
    for role in ROLES:
        r = c.get(f"/api/v1/cases/{case_id}/legal-review", headers=auth(tok[role]))
        if may(role, Permission.LEGAL_READ):
            assert r.status_code == 200, (role, r.text)
            st = r.json()
            assert (
                st["due_provisional"] and st["due_note"] == note and str(TODAY.year) in st["due_explanation"]
            )
        else:
            assert r.status_code in (403, 404), (role, r.text)
    zh = c.get(
        f"/api/v1/cases/{case_id}/legal-review",
        headers={**auth(tok["legal-reviewer"]), "Accept-Language": "zh-CN"},
    )
    assert zh.json()["due_note"] == f"暂定，{TODAY.year} 年节假日安排未载入"

    # The pending list across cases.
    for role in ROLES:
        r = c.get("/api/v1/legal-reviews", headers=auth(tok[role]))
        if may(role, Permission.LEGAL_READ_ALL):
            assert r.status_code == 200, (role, r.text)
            (item,) = r.json()["items"]
            assert item["due_provisional"] and item["due_note"] == note
        else:
            assert r.status_code == 403, (role, r.text)

    # Registering a decision for publication, decided today: a provisional deadline, never a 422.
    with session_scope(engine) as s:
        decided = [case_with_decision(s, users["clerk"], f"P-{i}")[0] for i in range(len(ROLES))]
    registered: list[dict[str, Any]] = []
    for role, decided_case in zip(ROLES, decided, strict=True):
        body = {
            "case_id": decided_case,
            "category": "penalty",
            "decided_on": TODAY.isoformat(),
            "party_kind": "organisation",
            "party_name": "某某有限公司",
            "conclusion": "警告",
        }
        r = c.post("/api/v1/publicity/decisions", json=body, headers=auth(tok[role]))
        if may(role, Permission.PUBLICITY_REGISTER):
            assert r.status_code == 201, (role, r.text)
            d = r.json()
            assert d["deadline_provisional"] and d["deadline_missing_years"] == [TODAY.year], role
            assert d["deadline_note"] == note
            registered.append(d)
        else:
            assert r.status_code == 403, (role, r.text)
    assert registered
    first = registered[0]["id"]
    for role in ROLES:
        one = c.get(f"/api/v1/publicity/decisions/{first}", headers=auth(tok[role]))
        listed = c.get("/api/v1/publicity/decisions", headers=auth(tok[role]))
        due = c.get("/api/v1/publicity/due?soon=20", headers=auth(tok[role]))
        if may(role, Permission.PUBLICITY_READ):
            assert one.status_code == listed.status_code == due.status_code == 200, (role, due.text)
            assert one.json()["deadline_note"] == note
            assert all(d["deadline_provisional"] for d in listed.json())
            soon = due.json()["due_soon"]
            assert {i["id"] for i in soon} == {d["id"] for d in registered}
            assert all(i["deadline_provisional"] and i["deadline_note"] == note for i in soon)
        else:
            assert one.status_code == listed.status_code == due.status_code == 403, role

    # The oversight check warns about the year and lists the provisional deadlines.
    for role in ROLES:
        run = c.post("/api/v1/oversight/warnings/run", headers=auth(tok[role]))
        got = c.get("/api/v1/oversight/warnings", headers=auth(tok[role]))
        if may(role, Permission.OVERSIGHT):
            assert run.status_code == 201 and got.status_code == 200, (role, got.text)
            counts = got.json()["counts"]
            assert counts["calendar-year-missing"] >= 1
            assert counts["provisional-deadline"] == 1 + len(registered)  # the live submission, the decisions
            year = next(i for i in got.json()["items"] if i["kind"] == "calendar-year-missing")
            assert year["details"]["command"] == FIX_COMMAND
        else:
            assert run.status_code == got.status_code == 403, role

    # /healthz (no account): the warning rides along; nothing is "down" because of it.
    health = c.get("/healthz").json()
    assert any(str(TODAY.year) in m and FIX_COMMAND in m for m in health["warnings"])
    assert "calendar" not in health["checks"]

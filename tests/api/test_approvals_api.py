"""Issue 10, finding 4 over HTTP (in-process): unlinking, clearing a permanent flag, releasing a legal
hold and changing the retention policy answer 202 with a pending request; each is carried out only
when a second person with the right role approves it. Every route tried by every role that may and
may not use it; self-approval, approving twice, an expired request and bad input answered with a
clear 4xx and nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from api.app import create_app
from archive.approvals.models import ApprovalRequest
from archive.db import session_scope
from archive.models import Event, Outcome
from archive.storage import MinioStore
from retention.policy import default_policy
from tests.case_factories import T, auth, media_row
from tests.retention.test_retention import archived

ROLES = [
    "officer",
    "reviewer",
    "auditor",
    "records-manager",
    "admin",
    "approver",
    "legal-reviewer",
    "publisher",
]


class Sent:
    def __init__(self) -> None:
        self.tasks: list[str] = []

    def send(self, step: str, media_id: str, sha256: str) -> None:
        pass

    def send_task(self, name: str, *args: str) -> None:
        self.tasks.append(name)


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[tuple[TestClient, Sent]]:
    app = create_app()
    sent = Sent()
    app.state.dispatcher = sent
    with TestClient(app) as c:
        yield c, sent


@pytest.fixture
def tok(make_user: Any) -> dict[str, str]:
    out = {role: make_user(role.replace("-", ""), role) for role in ROLES}
    out["records-manager-2"] = make_user("rm2", "records-manager")
    return out


def _count(engine: Engine, model: Any = Event) -> int:
    """Rows of ``model``; for events, changes only (refusals are logged as denied, by design)."""
    with Session(engine) as s:
        stmt = select(func.count()).select_from(model)
        if model is Event:
            stmt = stmt.where(Event.outcome != Outcome.DENIED)
        return int(s.exec(stmt).one())


def test_unlink_needs_a_second_person(
    client: tuple[TestClient, Sent], tok: dict[str, str], engine: Engine
) -> None:
    c, _ = client
    mid = media_row(engine, recorded_at=T)
    case = c.post(
        "/api/v1/cases",
        json={"number": "U-1", "title": "t", "kind": "criminal", "reviewers": ["reviewer"]},
        headers=auth(tok["records-manager"]),
    ).json()
    link = f"/api/v1/cases/{case['id']}/media"
    assert (
        c.post(link, json={"media_id": mid, "reason": "seen"}, headers=auth(tok["admin"])).status_code == 201
    )
    unlink = f"{link}/{mid}/unlink"
    # Who may not even ask: no write access to the case (the case is hidden from some: 404).
    for role in ("officer", "auditor", "approver", "legal-reviewer", "publisher"):
        assert c.post(unlink, json={"reason": "x"}, headers=auth(tok[role])).status_code in (403, 404), role
    assert c.post(unlink, json={"reason": ""}, headers=auth(tok["reviewer"])).status_code == 422
    r = c.post(unlink, json={"reason": "wrong car"}, headers=auth(tok["reviewer"]))
    assert r.status_code == 202 and r.json()["state"] == "pending" and r.json()["kind"] == "case.unlink", (
        r.text
    )
    rid = r.json()["id"]
    assert [x["media_id"] for x in c.get(link, headers=auth(tok["reviewer"])).json()] == [mid]
    approve = f"/api/v1/approvals/{rid}/approve"
    n = _count(engine)
    for role in ("officer", "reviewer", "auditor", "approver", "legal-reviewer", "publisher"):
        r = c.post(approve, json={}, headers=auth(tok[role]))
        assert r.status_code == 403, (role, r.text)
    assert c.get(link, headers=auth(tok["reviewer"])).json() != []
    r = c.post(approve, json={"reason": "checked"}, headers=auth(tok["records-manager"]))
    assert (
        r.status_code == 200
        and r.json()["state"] == "approved"
        and r.json()["decided_by"] == "recordsmanager"
    )
    assert c.get(link, headers=auth(tok["reviewer"])).json() == []
    # Approving twice: 409, nothing more logged.
    n = _count(engine)
    r = c.post(approve, json={}, headers=auth(tok["admin"]))
    assert r.status_code == 409 and r.json()["code"] == "approval.decided"
    assert _count(engine) == n


def test_retention_requests_by_role(
    client: tuple[TestClient, Sent], tok: dict[str, str], engine: Engine, store: MinioStore
) -> None:
    c, sent = client
    m = archived(engine, store, datetime.now(UTC) - timedelta(days=30))
    url = f"/api/v1/media/{m.id}"
    rm, rm2, admin = auth(tok["records-manager"]), auth(tok["records-manager-2"]), auth(tok["admin"])
    assert (
        c.post(f"{url}/flags", json={"kind": "obstruction", "reason": "pushed"}, headers=rm).status_code
        == 200
    )
    assert (
        c.post(f"{url}/flags", json={"kind": "important", "reason": "marked"}, headers=rm).status_code == 200
    )
    hold = c.post(f"{url}/holds", json={"reason": "court order"}, headers=rm).json()["holds"][0]["id"]

    # A flag that is not permanent clears at once; a permanent one waits (202).
    r = c.post(f"{url}/flags/important/clear", json={"reason": "looked"}, headers=rm)
    assert r.status_code == 200 and "legal_hold" in r.json()
    r = c.post(f"{url}/flags/obstruction/clear", json={"reason": "wrong clip"}, headers=rm)
    assert r.status_code == 202, r.text
    unflag = r.json()["id"]
    # Releasing a hold: records managers ask; admins may not.
    assert (
        c.post(f"/api/v1/holds/{hold}/release", json={"reason": "lifted"}, headers=admin).status_code == 403
    )
    r = c.post(f"/api/v1/holds/{hold}/release", json={"reason": "lifted"}, headers=rm)
    assert r.status_code == 202 and r.json()["payload"] == {"hold_id": hold, "media_id": m.id}
    release = r.json()["id"]
    assert c.post("/api/v1/holds/99999/release", json={"reason": "lifted"}, headers=rm).status_code == 404
    # The policy: records managers ask; admins, auditors and others may not.
    pol = {**default_policy().to_json(), "default_months": 12}
    for role in ("admin", "auditor", "reviewer", "officer", "approver"):
        r = c.put(
            "/api/v1/retention/policy", json={"policy": pol, "reason": "a year"}, headers=auth(tok[role])
        )
        assert r.status_code == 403, role
    r = c.put(
        "/api/v1/retention/policy", json={"policy": {**pol, "rules": []}, "reason": "simpler"}, headers=rm
    )
    assert (
        r.status_code == 422
        and r.json()["code"] == "retention.policy_invalid"
        and "rules: []" in r.json()["detail"]
    )
    r = c.put("/api/v1/retention/policy", json={"policy": pol, "reason": "a year"}, headers=rm)
    assert r.status_code == 202
    policy = r.json()["id"]
    explained = c.get(f"{url}/retention", headers=rm).json()
    assert explained["status"] == "permanent" and explained["legal_hold"]  # nothing happened yet

    # Who may approve what: nobody their own; a hold only another records manager.
    for rid in (unflag, release, policy):
        r = c.post(f"/api/v1/approvals/{rid}/approve", json={}, headers=rm)
        assert r.status_code == 403 and r.json()["code"] == "approval.own_request"
        for role in ("officer", "reviewer", "auditor", "approver", "legal-reviewer", "publisher"):
            assert (
                c.post(f"/api/v1/approvals/{rid}/approve", json={}, headers=auth(tok[role])).status_code
                == 403
            )
    assert c.post(f"/api/v1/approvals/{release}/approve", json={}, headers=admin).status_code == 403
    assert c.post(f"/api/v1/approvals/{release}/approve", json={}, headers=rm2).status_code == 200
    assert c.post(f"/api/v1/approvals/{unflag}/approve", json={}, headers=admin).status_code == 200
    r = c.post(f"/api/v1/approvals/{policy}/approve", json={}, headers=rm2)
    assert r.status_code == 200 and r.json()["result"] == {"version": 2}
    assert "custody.retention_reclassify" in sent.tasks
    explained = c.get(f"{url}/retention", headers=rm).json()
    assert explained["rule"] == "default" and not explained["legal_hold"]
    assert c.get("/api/v1/retention/policy", headers=rm).json()["default_months"] == 12
    with Session(engine) as s:
        acts = [e.action for e in s.exec(select(Event).where(Event.subject_id == m.id))]
    assert acts.count("approval.request") == 2 and acts.count("approval.execute") == 2
    assert {"retention.unflag", "retention.release"} <= set(acts)

    # Reading the requests: your own, those you may decide; auditors all; others none.
    listed = {
        role: [x["id"] for x in c.get("/api/v1/approvals", headers=auth(tok[role])).json()] for role in ROLES
    }
    assert listed["records-manager"] == listed["auditor"] == [unflag, release, policy]
    assert listed["admin"] == [unflag, policy]  # admins do not decide legal holds
    assert listed["reviewer"] == listed["officer"] == listed["approver"] == []
    assert c.get(f"/api/v1/approvals/{release}", headers=auth(tok["reviewer"])).status_code == 404
    assert c.get(f"/api/v1/approvals/{release}", headers=auth(tok["auditor"])).json()["state"] == "approved"
    assert c.get("/api/v1/approvals?state=pending", headers=rm).json() == []


def test_bad_decisions_change_nothing(
    client: tuple[TestClient, Sent], tok: dict[str, str], engine: Engine
) -> None:
    c, _ = client
    rm, rm2 = auth(tok["records-manager"]), auth(tok["records-manager-2"])
    pol = {**default_policy().to_json(), "default_months": 12}
    rid = c.put("/api/v1/retention/policy", json={"policy": pol, "reason": "a year"}, headers=rm).json()["id"]
    n, requests = _count(engine), _count(engine, ApprovalRequest)
    assert c.post("/api/v1/approvals/424242/approve", json={}, headers=rm2).status_code == 404
    r = c.post(f"/api/v1/approvals/{rid}/reject", json={"reason": ""}, headers=rm2)
    assert r.status_code == 422 and r.json()["code"] == "approval.invalid"
    assert c.post(f"/api/v1/approvals/{rid}/reject", json={"reason": "no"}, headers=rm).status_code == 403
    assert c.post(f"/api/v1/approvals/{rid}/cancel", json={}, headers=rm2).status_code == 404
    # Someone else asking for the very same change: 409 naming the pending request.
    r = c.put("/api/v1/retention/policy", json={"policy": pol, "reason": "a year"}, headers=rm2)
    assert r.status_code == 409 and r.json()["code"] == "approval.duplicate"
    assert (_count(engine), _count(engine, ApprovalRequest)) == (n, requests)
    # Expired (its lifetime passed): 409, the policy unchanged.
    with session_scope(engine) as s:
        row = s.get(ApprovalRequest, rid)
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        s.add(row)
    r = c.post(f"/api/v1/approvals/{rid}/approve", json={}, headers=rm2)
    assert r.status_code == 409 and r.json()["code"] == "approval.expired"
    assert c.get(f"/api/v1/approvals/{rid}", headers=rm).json()["state"] == "expired"
    assert c.get("/api/v1/retention/policy", headers=rm).json()["version"] == 1
    assert _count(engine) == n
    # Rejected: nothing installed; a second decision is a 409.
    rid2 = c.put("/api/v1/retention/policy", json={"policy": pol, "reason": "again"}, headers=rm).json()["id"]
    r = c.post(f"/api/v1/approvals/{rid2}/reject", json={"reason": "not now"}, headers=auth(tok["admin"]))
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    assert c.post(f"/api/v1/approvals/{rid2}/approve", json={}, headers=rm2).status_code == 409
    assert c.get("/api/v1/retention/policy", headers=rm).json()["version"] == 1

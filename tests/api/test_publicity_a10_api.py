"""Requirement A10 through the API (in process, PostgreSQL): decision performance and random-inspection
results, every new endpoint for each role that may and each that may not use it, 422 naming the field
and 404 for unknown things, a custody event for each change, and the public face showing exactly the
published, redacted fields (the status and date of a published decision's performance, never its note;
an inspection result with a natural person's name masked) and nothing after a withdrawal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.app import create_app
from archive.accounts import services as accounts
from archive.accounts.models import Role
from archive.db import session_scope
from archive.models import Event
from archive.publicity.models import RandomInspection
from archive.publicity.services import today
from tests.api.test_approvals_api import Sent
from tests.archive.publicity.publicity_factories import penalty_decision
from tests.case_factories import auth

ROLES = [r.value for r in Role]
READERS = {"admin", "publisher", "records-manager", "auditor"}
PUBLISHERS = {"publisher"}
NOTE = "INTERNAL-NOTE-分期缴纳申请"
PERSON = "王小明"
API = "/api/v1/publicity"


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[TestClient]:
    app = create_app()
    app.state.dispatcher = Sent()
    with TestClient(app) as c:
        yield c


@pytest.fixture
def world(engine: Engine) -> dict[str, Any]:
    """A token for every role, a published decision and a registered (unpublished) one."""
    tokens: dict[str, str] = {}
    with session_scope(engine) as s:
        users = {}
        for role in Role:
            name = "0815" if role is Role.OFFICER else f"u-{role.value}"
            users[role.value], tokens[role.value] = accounts.add_user(s, name, role)
        pub, clerk = users["publisher"], users["records-manager"]
        out: dict[str, Any] = {"tokens": tokens}
        for key, number, publish in (("published", "A10-P", True), ("pending", "A10-U", False)):
            d = penalty_decision(s, pub, clerk, number, publish=publish)
            out[key] = {"id": d.id, "ref": d.ref}
    return out


def _events(engine: Engine, action: str) -> list[Event]:
    with Session(engine) as s:
        return list(s.exec(select(Event).where(Event.action == action).order_by(col(Event.id))))


def _inspection(**kw: Any) -> dict[str, Any]:
    return {
        "item": "道路运输企业安全生产监督检查",
        "party_kind": "natural-person",
        "party_name": PERSON,
        "inspected_on": "2025-05-06",
        "result": "rectify",
        "summary": f"{PERSON}经营的维修点消防通道堵塞，已责令整改。",
        **kw,
    }


def test_every_new_endpoint_for_every_role(client: TestClient, world: dict[str, Any]) -> None:
    tokens = world["tokens"]
    did = world["published"]["id"]
    state: dict[str, Any] = {}

    def draft() -> dict[str, Any]:
        """A draft registered by the publisher (one per use: each approval needs its own)."""
        r = client.post(f"{API}/inspections", headers=auth(tokens["publisher"]), json=_inspection())
        assert r.status_code == 201, r.text
        return dict(r.json())

    state["one"] = draft()
    state["to_approve"] = draft()
    state["to_withdraw"] = draft()
    r = client.post(
        f"{API}/inspections/{state['to_withdraw']['id']}/approve",
        headers=auth(tokens["publisher"]),
        json={"sha256": state["to_withdraw"]["sha256"]},
    )
    assert r.status_code == 200, r.text

    matrix: list[tuple[str, str, Callable[[], Any], set[str], int]] = [
        (
            "POST",
            f"/decisions/{did}/performance",
            lambda: {"status": "fulfilled", "as_of": "2025-03-20", "note": NOTE},
            PUBLISHERS,
            201,
        ),
        ("GET", f"/decisions/{did}/performance", lambda: None, READERS, 200),
        ("POST", "/inspections", _inspection, PUBLISHERS, 201),
        ("GET", "/inspections", lambda: None, READERS, 200),
        ("GET", "/inspections?state=draft&limit=5", lambda: None, READERS, 200),
        ("GET", f"/inspections/{state['one']['id']}", lambda: None, READERS, 200),
        (
            "POST",
            f"/inspections/{state['to_approve']['id']}/approve",
            lambda: {"sha256": state["to_approve"]["sha256"]},
            PUBLISHERS,
            200,
        ),
        (
            "POST",
            f"/inspections/{state['to_withdraw']['id']}/withdraw",
            lambda: {"reason": "抽查对象有误"},
            PUBLISHERS,
            200,
        ),
    ]
    for method, path, body, allowed, ok in matrix:
        r = client.request(method, f"{API}{path}", json=body())
        assert r.status_code == 401, (method, path, r.status_code)
        for role in sorted(set(ROLES) - allowed):
            r = client.request(method, f"{API}{path}", json=body(), headers=auth(tokens[role]))
            assert r.status_code == 403, (method, path, role, r.status_code, r.text)
            assert r.json()["code"] == "forbidden"
        for role in sorted(allowed):
            r = client.request(method, f"{API}{path}", json=body(), headers=auth(tokens[role]))
            assert r.status_code == ok, (method, path, role, r.status_code, r.text)
    # The public face needs no account.
    for path in ("/public/api/inspections", "/public/inspections", "/public/api/decisions"):
        assert client.get(path).status_code == 200, path


def test_performance_history_public_face_and_events(
    client: TestClient, world: dict[str, Any], engine: Engine
) -> None:
    tokens = world["tokens"]
    pub = auth(tokens["publisher"])
    did, ref = world["published"]["id"], world["published"]["ref"]
    feed_item = f"/public/api/decisions/{ref}"
    assert client.get(feed_item).json()["performance"] is None
    etag = client.get("/public/api/decisions").headers["etag"]

    r = client.post(
        f"{API}/decisions/{did}/performance", headers=pub, json={"status": "not-due", "as_of": "2025-03-03"}
    )
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["version"] == 1 and first["status_label"] == "履行期限未届满" and first["note"] == ""
    r = client.post(
        f"{API}/decisions/{did}/performance",
        headers=pub,
        json={"status": "partly", "as_of": "2025-04-01", "note": NOTE},
    )
    assert r.status_code == 201 and r.json()["version"] == 2 and r.json()["decision_ref"] == ref

    history = client.get(f"{API}/decisions/{did}/performance", headers=auth(tokens["auditor"])).json()
    assert [(h["version"], h["status"], h["as_of"], h["note"]) for h in history] == [
        (1, "not-due", "2025-03-03", ""),
        (2, "partly", "2025-04-01", NOTE),
    ]
    # The public face: the current status and its date, never the note; the cached feed moved on.
    again = client.get("/public/api/decisions", headers={"If-None-Match": etag})
    assert again.status_code == 200 and NOTE not in again.text
    item = client.get(feed_item).json()
    assert item["performance"] == {"status": "partly", "status_label": "部分履行", "as_of": "2025-04-01"}
    page = client.get(f"/public/decisions/{ref}", headers={"Accept-Language": "zh-CN"}).text
    assert "履行情况" in page and "部分履行（截至2025-04-01）" in page and NOTE not in page
    en = client.get(f"/public/decisions/{ref}?lang=en").text
    assert "Partly fulfilled (as of 2025-04-01)" in en
    # A decision never published shows nothing, performance or not.
    pending = world["pending"]
    r = client.post(
        f"{API}/decisions/{pending['id']}/performance",
        headers=pub,
        json={"status": "fulfilled", "as_of": "2025-03-10"},
    )
    assert r.status_code == 201
    assert client.get(f"/public/api/decisions/{pending['ref']}").status_code == 404

    logged = _events(engine, "publicity.performance.record")
    assert [(e.subject_id, e.details["old_status"], e.details["new_status"]) for e in logged] == [
        (did, None, "not-due"),
        (did, "not-due", "partly"),
        (pending["id"], None, "fulfilled"),
    ]

    # Withdrawn: the notice only, no performance.
    r = client.post(
        f"{API}/decisions/{did}/withdraw", headers=pub, json={"ground": "revoked", "reason": "依法撤销"}
    )
    assert r.status_code == 200
    item = client.get(feed_item).json()
    assert item["withdrawn"] is not None and item["performance"] is None
    page = client.get(f"/public/decisions/{ref}", headers={"Accept-Language": "zh-CN"}).text
    assert "部分履行" not in page and "履行情况" not in page


def test_performance_bad_input(client: TestClient, world: dict[str, Any], engine: Engine) -> None:
    pub = auth(world["tokens"]["publisher"])
    did = world["published"]["id"]
    url = f"{API}/decisions/{did}/performance"
    tomorrow = (today() + timedelta(days=1)).isoformat()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"status": "paid", "as_of": "2025-03-20"}, "status"),
        ({"as_of": "2025-03-20"}, "status"),
        ({"status": "fulfilled", "as_of": "20.3.2025"}, "as_of"),
        ({"status": "fulfilled"}, "as_of"),
        ({"status": "fulfilled", "as_of": tomorrow}, "as_of"),
        ({"status": "fulfilled", "as_of": "2025-03-02"}, "as_of"),
        ({"status": "fulfilled", "as_of": "2025-03-20", "note": "x" * 2001}, "note"),
    ]
    for body, field in cases:
        r = client.post(url, headers=pub, json=body)
        assert r.status_code == 422, (body, r.status_code, r.text)
        assert field in r.json()["detail"], (body, r.json())
    for method in ("GET", "POST"):
        r = client.request(
            method,
            f"{API}/decisions/no-such-decision/performance",
            headers=pub,
            json={"status": "fulfilled", "as_of": "2025-03-20"},
        )
        assert r.status_code == 404 and r.json()["code"] == "publicity.decision_not_found", r.text
    assert _events(engine, "publicity.performance.record") == []


def test_inspection_results_from_draft_to_public_and_down(
    client: TestClient, world: dict[str, Any], engine: Engine
) -> None:
    pub = auth(world["tokens"]["publisher"])
    r = client.post(f"{API}/inspections", headers=pub, json=_inspection())
    assert r.status_code == 201, r.text
    person = r.json()
    assert person["state"] == "draft" and person["party_name"] == PERSON
    assert person["public_party"] == "王某某" and PERSON not in person["public_summary"]
    assert person["result_label"] == "发现问题已责令整改"
    org = client.post(
        f"{API}/inspections",
        headers=pub,
        json=_inspection(
            party_kind="organisation",
            party_name="某某运输有限公司",
            summary="未发现问题。",
            result="no-problem",
            inspected_on="2025-05-07",
        ),
    ).json()
    assert org["public_party"] == "某某运输有限公司"
    assert client.get("/public/api/inspections").json() == {"items": [], "total": 0, "limit": 50, "offset": 0}

    # Approval names the SHA-256 of exactly what will be public.
    r = client.post(f"{API}/inspections/{person['id']}/approve", headers=pub, json={"sha256": "a" * 64})
    assert r.status_code == 409 and r.json()["code"] == "publicity.digest_mismatch"
    for one in (person, org):
        r = client.post(f"{API}/inspections/{one['id']}/approve", headers=pub, json={"sha256": one["sha256"]})
        assert r.status_code == 200 and r.json()["state"] == "published", r.text
    r = client.post(
        f"{API}/inspections/{person['id']}/approve", headers=pub, json={"sha256": person["sha256"]}
    )
    assert r.status_code == 409 and r.json()["code"] == "publicity.wrong_state"

    feed = client.get("/public/api/inspections")
    assert feed.status_code == 200 and feed.headers["etag"]
    items = feed.json()["items"]
    assert [i["ref"] for i in items] == [org["ref"], person["ref"]]  # newest publication first
    shown = items[1]
    assert shown == {
        "ref": person["ref"],
        "authority": shown["authority"],
        "item": "道路运输企业安全生产监督检查",
        "party_kind": "natural-person",
        "party": "王某某",
        "inspected_on": "2025-05-06",
        "result": "rectify",
        "summary": person["public_summary"],
        "party_kind_label": "自然人",
        "result_label": "发现问题已责令整改",
        "published_on": today().isoformat(),
        "sha256": person["sha256"],
    }
    assert items[0]["party"] == "某某运输有限公司"
    for secret in (PERSON, person["id"], org["id"], "u-publisher", "user:"):
        assert secret not in feed.text
    page = client.get("/public/inspections", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    assert "王某某" in page.text and "发现问题已责令整改" in page.text and PERSON not in page.text
    assert "某某运输有限公司" in page.text and "<script" not in page.text
    assert 'href="/public/inspections"' in client.get("/public/").text  # on the start page's menu

    r = client.post(
        f"{API}/inspections/{person['id']}/withdraw", headers=pub, json={"reason": "抽查对象有误"}
    )
    assert r.status_code == 200 and r.json()["state"] == "withdrawn" and r.json()["withdrawal_reason"]
    after = client.get("/public/api/inspections").json()
    assert after["total"] == 1 and person["ref"] not in str(after)
    assert person["ref"] not in client.get("/public/inspections").text
    # Kept, readable inside.
    kept = client.get(f"{API}/inspections/{person['id']}", headers=auth(world["tokens"]["auditor"])).json()
    assert kept["state"] == "withdrawn" and kept["withdrawal_reason"] == "抽查对象有误"
    with Session(engine) as s:
        assert s.get(RandomInspection, person["id"]) is not None

    assert [e.subject_id for e in _events(engine, "publicity.inspection.register")] == [
        person["id"],
        org["id"],
    ]
    assert [e.subject_id for e in _events(engine, "publicity.inspection.publish")] == [
        person["id"],
        org["id"],
    ]
    withdrawn = _events(engine, "publicity.inspection.withdraw")
    assert [(e.subject_id, e.actor) for e in withdrawn] == [(person["id"], "user:u-publisher")]


def test_inspection_bad_input(client: TestClient, world: dict[str, Any], engine: Engine) -> None:
    pub = auth(world["tokens"]["publisher"])
    tomorrow = (today() + timedelta(days=1)).isoformat()
    cases: list[tuple[dict[str, Any], str]] = [
        (_inspection(result="fine"), "result"),
        (_inspection(party_kind="robot"), "party_kind"),
        (_inspection(inspected_on=tomorrow), "inspected_on"),
        (_inspection(inspected_on="yesterday"), "inspected_on"),
        (_inspection(item=""), "item"),
        (_inspection(item="   "), "item"),
        (_inspection(party_name="x" * 201), "party_name"),
        (_inspection(summary=""), "summary"),
        ({k: v for k, v in _inspection().items() if k != "summary"}, "summary"),
    ]
    for body, field in cases:
        r = client.post(f"{API}/inspections", headers=pub, json=body)
        assert r.status_code == 422, (body, r.status_code, r.text)
        assert field in r.json()["detail"], (field, r.json())
    assert _events(engine, "publicity.inspection.register") == []
    for method, path, body in (
        ("GET", "/inspections/nope", None),
        ("POST", "/inspections/nope/approve", {"sha256": "a" * 64}),
        ("POST", "/inspections/nope/withdraw", {"reason": "x"}),
    ):
        r = client.request(method, f"{API}{path}", headers=pub, json=body)
        assert r.status_code == 404 and r.json()["code"] == "publicity.inspection_not_found", (path, r.text)
    r = client.post(f"{API}/inspections/nope/approve", headers=pub, json={"sha256": "short"})
    assert r.status_code == 422 and "sha256" in r.json()["detail"]
    draft = client.post(f"{API}/inspections", headers=pub, json=_inspection()).json()
    r = client.post(f"{API}/inspections/{draft['id']}/withdraw", headers=pub, json={"reason": "x"})
    assert r.status_code == 409 and r.json()["code"] == "publicity.wrong_state"
    r = client.post(f"{API}/inspections/{draft['id']}/withdraw", headers=pub, json={"reason": ""})
    assert r.status_code == 422 and "reason" in r.json()["detail"]

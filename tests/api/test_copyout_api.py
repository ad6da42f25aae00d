"""Copy-out approval (调取审批) through the real API: a request with a purpose, a second person with
the approver role decides, never the requester; bad input and each role."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from archive.copyout.models import CopyOutRequest
from archive.models import Event
from tests.case_factories import T, auth, media_row, new_case
from tests.conftest import LiveAPI


def _count(engine: Engine, model: Any) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def test_request_approve_refuse_and_four_eyes(live_api: LiveAPI, make_user: Any, engine: Engine) -> None:
    url = live_api.url
    clerk = make_user("clerk", "records-manager")
    rev = make_user("rev1", "reviewer")
    appr = make_user("appr1", "approver")
    appr2 = make_user("appr2", "approver")
    officer = make_user("0815", "officer")
    aud = make_user("aud", "auditor")
    case = new_case(url, clerk, number="C-1", reviewers=["rev1"])
    media = media_row(engine, recorded_at=T)
    co = f"{url}/api/v1/copyout"
    r = httpx.post(
        co,
        json={"kind": "case-export", "subject_id": case["id"], "purpose": "移送检察院审查起诉"},
        headers=auth(rev),
    )
    assert r.status_code == 201, r.text
    req = r.json()
    assert req["state"] == "pending" and req["state_zh"] == "待审批" and req["requested_by"] == "rev1"
    # Bad input changes nothing.
    before = (_count(engine, CopyOutRequest), _count(engine, Event))
    for body, code in [
        ({"kind": "case-export", "subject_id": case["id"], "purpose": "  "}, 422),
        ({"kind": "case-export", "subject_id": "no-such-case", "purpose": "x"}, 422),
        ({"kind": "photocopy", "subject_id": case["id"], "purpose": "x"}, 422),
    ]:
        assert httpx.post(co, json=body, headers=auth(rev)).status_code == code
    assert httpx.post(f"{co}/{req['id']}/refuse", json={"reason": ""}, headers=auth(appr)).status_code == 422
    assert (_count(engine, CopyOutRequest), _count(engine, Event)) == before
    # Only approvers decide; never their own request.
    for tok in (clerk, rev, officer, aud):
        assert httpx.post(f"{co}/{req['id']}/approve", json={}, headers=auth(tok)).status_code == 403
    own = httpx.post(
        co, json={"kind": "original-download", "subject_id": media, "purpose": "复核"}, headers=auth(appr)
    ).json()
    r = httpx.post(f"{co}/{own['id']}/approve", json={}, headers=auth(appr))
    assert r.status_code == 403 and "own request" in r.json()["detail"]
    r = httpx.post(f"{co}/{own['id']}/refuse", json={"reason": "不必要"}, headers=auth(appr2))
    assert r.status_code == 200 and r.json()["state"] == "refused"
    r = httpx.post(f"{co}/{req['id']}/approve", json={"reason": "同意"}, headers=auth(appr))
    assert r.status_code == 200 and r.json()["state"] == "approved" and r.json()["decided_by"] == "appr1"
    assert httpx.post(f"{co}/{req['id']}/approve", json={}, headers=auth(appr2)).status_code == 409
    assert httpx.post(f"{co}/999999/approve", json={}, headers=auth(appr2)).status_code == 404
    # Who sees which requests: approvers and auditors all, others their own.
    assert len(httpx.get(co, headers=auth(aud)).json()) == 2
    assert len(httpx.get(co, headers=auth(appr2)).json()) == 2
    assert [x["id"] for x in httpx.get(co, headers=auth(rev)).json()] == [req["id"]]
    assert httpx.get(co, headers=auth(officer)).json() == []
    assert (
        httpx.post(
            co, json={"kind": "original-download", "subject_id": media, "purpose": "x"}, headers=auth(officer)
        ).status_code
        == 403
    )
    assert (
        httpx.post(
            co, json={"kind": "case-export", "subject_id": case["id"], "purpose": "x"}, headers=auth(aud)
        ).status_code
        == 403
    )
    with Session(engine) as s:
        actions = [e.action for e in s.exec(select(Event).where(Event.action.startswith("copyout.")))]  # type: ignore[attr-defined]
    assert (
        actions.count("copyout.request") == 2 and "copyout.approve" in actions and "copyout.refuse" in actions
    )

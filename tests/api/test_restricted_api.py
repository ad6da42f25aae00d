"""Restricted records through the real API: a records manager marks with a class and a reason; only
users granted the item or its case read it, with a stated purpose; others get 404 as if it did not
exist; marks, grants and reads are custody events; bad input refused with nothing changed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from archive.models import Event
from archive.restricted.models import Grant, Mark
from tests.case_factories import T, auth, media_row, new_case, record_body
from tests.conftest import LiveAPI


def _count(engine: Engine, model: Any) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def test_marks_grants_and_purposeful_reads(live_api: LiveAPI, make_user: Any, engine: Engine) -> None:
    url = live_api.url
    clerk = make_user("clerk", "records-manager")
    rev1 = make_user("rev1", "reviewer")
    rev2 = make_user("rev2", "reviewer")
    aud = make_user("aud", "auditor")
    officer = make_user("0815", "officer")
    media = media_row(engine, recorded_at=T)
    case = new_case(url, clerk, number="R-1", reviewers=["rev1", "rev2"])
    r = httpx.post(
        f"{url}/api/v1/cases/{case['id']}/records",
        json=record_body(T, T + timedelta(minutes=5), ["0815"], body="举报人身份: 李四"),
        headers=auth(clerk),
    )
    rid = r.json()["record"]["record_id"]
    rm = f"{url}/api/v1/restricted"
    before = (_count(engine, Mark), _count(engine, Grant), _count(engine, Event))
    for body, needle in [
        ({"subject_kind": "record", "subject_id": rid, "sensitivity": "privacy", "reason": " "}, "reason"),
        (
            {"subject_kind": "record", "subject_id": "nope", "sensitivity": "privacy", "reason": "x"},
            "no record",
        ),
        (
            {"subject_kind": "case", "subject_id": case["id"], "sensitivity": "privacy", "reason": "x"},
            "grants",
        ),
        (
            {"subject_kind": "record", "subject_id": rid, "sensitivity": "gossip", "reason": "x"},
            "sensitivity",
        ),
    ]:
        r = httpx.post(f"{rm}/marks", json=body, headers=auth(clerk))
        assert r.status_code == 422 and needle in r.json()["detail"], r.text
    assert (_count(engine, Mark), _count(engine, Grant), _count(engine, Event)) == before
    for tok in (rev1, aud, officer):
        body = {"subject_kind": "record", "subject_id": rid, "sensitivity": "privacy", "reason": "x"}
        assert httpx.post(f"{rm}/marks", json=body, headers=auth(tok)).status_code == 403
    r = httpx.post(
        f"{rm}/marks",
        json={
            "subject_kind": "record",
            "subject_id": rid,
            "sensitivity": "privacy",
            "reason": "举报人个人信息",
        },
        headers=auth(clerk),
    )
    assert (
        r.status_code == 201
        and r.json()["sensitivity_zh"] == "个人隐私"
        and r.json()["case_id"] == case["id"]
    )
    r = httpx.post(
        f"{rm}/marks",
        json={"subject_kind": "media", "subject_id": media, "sensitivity": "trade-secret", "reason": "配方"},
        headers=auth(clerk),
    )
    assert r.status_code == 201
    again = {"subject_kind": "media", "subject_id": media, "sensitivity": "privacy", "reason": "x"}
    assert httpx.post(f"{rm}/marks", json=again, headers=auth(clerk)).status_code == 409
    # Grants: to named, existing users, with a reason.
    before = (_count(engine, Grant), _count(engine, Event))
    for body, needle in [
        ({"user_name": "ghost", "subject_kind": "record", "subject_id": rid, "reason": "x"}, "no user"),
        ({"user_name": "rev1", "subject_kind": "record", "subject_id": rid, "reason": ""}, "reason"),
        ({"user_name": "rev1", "subject_kind": "case", "subject_id": "nope", "reason": "x"}, "no case"),
    ]:
        r = httpx.post(f"{rm}/grants", json=body, headers=auth(clerk))
        assert r.status_code == 422 and needle in r.json()["detail"], r.text
    assert (_count(engine, Grant), _count(engine, Event)) == before
    body = {"user_name": "rev1", "subject_kind": "record", "subject_id": rid, "reason": "承办人"}
    assert httpx.post(f"{rm}/grants", json=body, headers=auth(rev1)).status_code == 403
    g = httpx.post(f"{rm}/grants", json=body, headers=auth(clerk))
    assert g.status_code == 201, g.text
    read = f"{rm}/cases/{case['id']}/records/{rid}"
    # Not granted: as if it did not exist. Granted: only with a purpose.
    assert httpx.get(read, params={"purpose": "curious"}, headers=auth(rev2)).status_code == 404
    r = httpx.get(read, headers=auth(rev1))
    assert r.status_code == 422 and "purpose" in r.json()["detail"]
    r = httpx.get(read, params={"purpose": "制作起诉意见书"}, headers=auth(rev1))
    assert r.status_code == 200 and r.json()[0]["body"] == "举报人身份: 李四"
    # The read, with its purpose, is on record and visible to auditors.
    acc = httpx.get(f"{url}/api/v1/oversight/access", params={"action": "restricted.read"}, headers=auth(aud))
    assert [(e["actor"], e["purpose"]) for e in acc.json()["items"]] == [("user:rev1", "制作起诉意见书")]
    assert acc.json()["items"][0]["case_id"] == case["id"]
    listed = httpx.get(f"{rm}/marks", headers=auth(aud)).json()
    assert {m["subject_kind"] for m in listed} == {"record", "media"}
    assert httpx.get(f"{rm}/marks", headers=auth(rev1)).status_code == 403
    assert [x["subject_id"] for x in httpx.get(f"{rm}/mine", headers=auth(rev1)).json()] == [rid]
    # Everywhere else the marked record and recording are absent; their own routes need a grant and a purpose.
    cases_url = f"{url}/api/v1/cases/{case['id']}"
    for tok in (clerk, rev1, rev2):
        assert rid not in {
            x["record_id"] for x in httpx.get(f"{cases_url}/records", headers=auth(tok)).json()
        }
        tl = httpx.get(f"{cases_url}/timeline", headers=auth(tok)).json()["items"]
        assert not {x.get("record_id") for x in tl} & {rid} and not {x.get("id") for x in tl} & {media}
        assert media not in {x["media_id"] for x in httpx.get(f"{cases_url}/media", headers=auth(tok)).json()}
        found = httpx.get(
            f"{url}/api/v1/records/search", params={"q": "举报人身份"}, headers=auth(tok)
        ).json()
        assert rid not in {x["record_id"] for x in found}
    assert media not in {
        m["id"] for m in httpx.get(f"{url}/api/v1/media", headers=auth(clerk)).json()["items"]
    }
    assert httpx.get(f"{cases_url}/records/{rid}", headers=auth(rev2)).status_code == 404
    assert httpx.get(f"{cases_url}/records/{rid}", headers=auth(rev1)).status_code == 422
    assert (
        httpx.get(f"{cases_url}/records/{rid}", params={"purpose": "复核"}, headers=auth(rev1)).status_code
        == 200
    )
    assert (
        httpx.get(f"{url}/api/v1/media/{media}", params={"purpose": "x"}, headers=auth(clerk)).status_code
        == 404
    )
    mg = {"user_name": "clerk", "subject_kind": "media", "subject_id": media, "reason": "档案管理"}
    assert httpx.post(f"{rm}/grants", json=mg, headers=auth(clerk)).status_code == 201
    assert httpx.get(f"{url}/api/v1/media/{media}", headers=auth(clerk)).status_code == 422
    assert (
        httpx.get(f"{url}/api/v1/media/{media}", params={"purpose": "核对"}, headers=auth(clerk)).status_code
        == 200
    )
    # Revoking the grant closes the door again.
    assert httpx.post(f"{rm}/grants/{g.json()['id']}/revoke", headers=auth(clerk)).status_code == 200
    assert httpx.get(read, params={"purpose": "again"}, headers=auth(rev1)).status_code == 404
    with Session(engine) as s:
        actions = {e.action for e in s.exec(select(Event).where(col(Event.action).startswith("restricted.")))}
    assert {"restricted.mark", "restricted.grant", "restricted.read", "restricted.revoke"} <= actions

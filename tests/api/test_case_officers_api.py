"""Issue 10, finding 1 over HTTP: the attack refused, officers on a case and confirming pending
auto-links, each endpoint tried by every role that may and may not use it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from tests.case_factories import T, auth, media_row, new_case, record_body
from tests.conftest import LiveAPI


def test_officers_on_a_case_and_pending_links_by_role(
    live_api: LiveAPI, make_user: Any, engine: Engine
) -> None:
    tok = {
        "officer": make_user("0815", "officer"),
        "rev": make_user("rev", "reviewer"),
        "rev2": make_user("rev2", "reviewer"),
        "auditor": make_user("aud", "auditor"),
        "clerk": make_user("clerk", "records-manager"),
        "admin": make_user("root", "admin"),
    }
    url = live_api.url + "/api/v1"
    case = new_case(live_api.url, tok["clerk"], number="SEC-1", reviewers=["rev"])
    cid = case["id"]
    unrelated = media_row(engine, officer="9999", device="BC-9999", recorded_at=T + timedelta(minutes=5))

    # The attack: a window of 130 years is refused, naming the limit; nothing becomes visible.
    wide = record_body(datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC), ["9999"])
    r = httpx.post(f"{url}/cases/{cid}/records", json=wide, headers=auth(tok["rev"]))
    assert r.status_code == 422 and "24 h" in r.json()["detail"], r.text
    # A bounded window naming an officer who is not on the case: refused too.
    narrow = record_body(T, T + timedelta(hours=1), ["9999"])
    r = httpx.post(f"{url}/cases/{cid}/records", json=narrow, headers=auth(tok["rev"]))
    assert r.status_code == 422 and "not on case" in r.json()["detail"], r.text
    assert httpx.get(f"{url}/media/{unrelated}/original", headers=auth(tok["rev"])).status_code == 404

    # Putting officers on a case: records managers and admins only.
    for who in ("officer", "rev", "rev2", "auditor"):
        r = httpx.post(
            f"{url}/cases/{cid}/officers", json={"badge": "9999", "reason": "x"}, headers=auth(tok[who])
        )
        assert r.status_code == 403, (who, r.text)
    r = httpx.post(
        f"{url}/cases/{cid}/officers",
        json={"badge": "9999", "reason": "at the scene"},
        headers=auth(tok["clerk"]),
    )
    assert r.status_code == 201 and [o["badge"] for o in r.json()] == ["9999"], r.text
    r = httpx.post(
        f"{url}/cases/{cid}/officers", json={"badge": "7777", "reason": "backup"}, headers=auth(tok["admin"])
    )
    assert r.status_code == 201 and [o["badge"] for o in r.json()] == ["7777", "9999"], r.text
    r = httpx.post(
        f"{url}/cases/{cid}/officers/7777/remove", json={"reason": "not there"}, headers=auth(tok["rev"])
    )
    assert r.status_code == 403
    r = httpx.post(
        f"{url}/cases/{cid}/officers/7777/remove", json={"reason": "not there"}, headers=auth(tok["clerk"])
    )
    assert r.status_code == 200 and [o["badge"] for o in r.json()] == ["9999"], r.text
    # Reading them: whoever reads the case; others get the case's 404.
    for who in ("rev", "auditor", "clerk", "admin"):
        assert httpx.get(f"{url}/cases/{cid}/officers", headers=auth(tok[who])).status_code == 200, who
    for who in ("officer", "rev2"):
        assert httpx.get(f"{url}/cases/{cid}/officers", headers=auth(tok[who])).status_code == 404, who

    # Now the reviewer's record links the recording, pending: still not theirs to see.
    r = httpx.post(f"{url}/cases/{cid}/records", json=narrow, headers=auth(tok["rev"]))
    assert r.status_code == 201 and r.json()["linked_media"] == [unrelated], r.text
    links = httpx.get(f"{url}/cases/{cid}/media", headers=auth(tok["rev"])).json()
    assert [(x["media_id"], x["pending"]) for x in links] == [(unrelated, True)]
    assert httpx.get(f"{url}/media/{unrelated}/original", headers=auth(tok["rev"])).status_code == 404
    timeline = httpx.get(f"{url}/cases/{cid}/timeline", headers=auth(tok["rev"])).json()
    assert [i["id"] for i in timeline["items"] if i["type"] == "media"] == []

    confirm = f"{url}/cases/{cid}/media/{unrelated}/confirm"
    for who in ("officer", "rev", "rev2", "auditor"):
        assert httpx.post(confirm, headers=auth(tok[who])).status_code == 403, who
    r = httpx.post(confirm, headers=auth(tok["clerk"]))
    assert r.status_code == 200 and r.json()["confirmed_by"] == "user:clerk" and not r.json()["pending"], (
        r.text
    )
    assert httpx.post(confirm, headers=auth(tok["admin"])).status_code == 404  # nothing pending any more
    assert httpx.get(f"{url}/media/{unrelated}", headers=auth(tok["rev"])).status_code == 200

"""Restricted items in every listing, through the real API: a user granted a marked record,
attachment or recording (or its whole case) sees it in the case's records, links, timeline, coverage,
the record search, the media list and the party view when they state a purpose, and each item so
listed is a ``restricted.read`` event with that purpose and the listing it came through; without a
purpose nobody lists it; a user without a grant never does (purpose or not), and reading it by its
own route is 404 for them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive.cases.models import CaseMedia, LinkSource
from archive.db import session_scope
from archive.models import Event
from archive.restricted.models import Grant
from tests.case_factories import T, auth, media_row, new_case, record_body
from tests.conftest import LiveAPI

PURPOSE = "审查起诉: 核对证据"


def _reads(engine: Engine) -> list[tuple[str, str, str, str]]:
    """(actor, subject id, purpose, via) of every restricted.read so far."""
    with Session(engine) as s:
        rows = s.exec(select(Event).where(Event.action == "restricted.read").order_by(col(Event.id)))
        return [(e.actor, e.subject_id, e.details["purpose"], e.details["via"]) for e in rows]


def test_grantees_list_marked_items_with_a_purpose(live_api: LiveAPI, make_user: Any, engine: Engine) -> None:
    url = live_api.url
    clerk = make_user("clerk", "records-manager")
    tokens = {name: make_user(name, "reviewer") for name in ("item-grantee", "case-grantee", "no-grant")}
    auditors = {name: make_user(name, "auditor") for name in ("aud-granted", "aud-plain")}
    recording = media_row(engine, recorded_at=T)  # marked
    plain = media_row(engine, recorded_at=T + timedelta(minutes=6))
    scan = media_row(engine, recorded_at=None, duration_s=None, kind="document")  # a marked attachment
    case = new_case(url, clerk, number="RL-1", reviewers=list(tokens))
    cid = case["id"]
    base = f"{url}/api/v1/cases/{cid}"
    rids = []
    for body in ("举报人身份: 李四 证言", "现场 证言 记录"):
        r = httpx.post(
            f"{base}/records",
            json=record_body(T, T + timedelta(minutes=5), ["0815"], body=body),
            headers=auth(clerk),
        )
        assert r.status_code == 201, r.text
        rids.append(r.json()["record"]["record_id"])
    secret, open_rid = rids
    for mid in (recording, plain):
        r = httpx.post(f"{base}/media", json={"media_id": mid, "reason": "现场执法"}, headers=auth(clerk))
        assert r.status_code in (200, 201), r.text
    with session_scope(engine) as s:
        s.add(
            CaseMedia(
                case_id=cid, media_id=scan, source=LinkSource.ATTACHMENT, reason="扫描件", linked_by="t"
            )
        )
    party = {
        "kind": "person",
        "name": "李四",
        "id_doc_type": "resident-id",
        "id_number": "11010519491231002X",
    }
    r = httpx.post(f"{base}/parties", json=party, headers=auth(clerk))
    assert r.status_code == 201, r.text
    party_id = r.json()["id"]
    rm = f"{url}/api/v1/restricted"
    for kind, sid in (("record", secret), ("media", recording), ("media", scan)):
        mark = {"subject_kind": kind, "subject_id": sid, "sensitivity": "privacy", "reason": "举报人信息"}
        assert httpx.post(f"{rm}/marks", json=mark, headers=auth(clerk)).status_code == 201
    grants = [
        ("item-grantee", kind, sid)
        for kind, sid in (("record", secret), ("media", recording), ("media", scan))
    ]
    grants += [("case-grantee", "case", cid), ("aud-granted", "case", cid)]
    for user, kind, sid in grants:
        g = {"user_name": user, "subject_kind": kind, "subject_id": sid, "reason": "承办"}
        assert httpx.post(f"{rm}/grants", json=g, headers=auth(clerk)).status_code == 201

    def listings(tok: str, purpose: str | None) -> dict[str, set[str]]:
        """What each listing shows of the three marked items."""
        p = {"purpose": purpose} if purpose else {}
        marked = {secret, recording, scan}

        def get(path: str, **params: Any) -> Any:
            r = httpx.get(f"{url}{path}", params={**params, **p}, headers=auth(tok))
            assert r.status_code == 200, (path, r.text)
            return r.json()

        tl = get(f"/api/v1/cases/{cid}/timeline")["items"]
        out = {
            "records": {x["record_id"] for x in get(f"/api/v1/cases/{cid}/records")},
            "all-versions": {
                x["record_id"] for x in get(f"/api/v1/cases/{cid}/records", all_versions="true")
            },
            "links": {x["media_id"] for x in get(f"/api/v1/cases/{cid}/media")},
            "timeline": {x.get("record_id") or x.get("id") for x in tl},
            "coverage": {x["record_id"] for x in get(f"/api/v1/cases/{cid}/coverage")["records"]},
            "search": {x["record_id"] for x in get("/api/v1/records/search", q="证言")},
            "media": {x["id"] for x in get("/api/v1/media")["items"]},
        }
        return {k: v & marked for k, v in out.items()}

    everything = {
        "records": {secret},
        "all-versions": {secret},
        "links": {recording, scan},
        "timeline": {secret, recording, scan},
        "coverage": {secret},
        "search": {secret},
        "media": {recording, scan},
    }
    nothing: dict[str, set[str]] = {k: set() for k in everything}
    # Without a grant: absent, whatever purpose is stated; the item's own route is 404.
    assert listings(tokens["no-grant"], PURPOSE) == nothing
    assert listings(tokens["no-grant"], None) == nothing
    assert (
        httpx.get(
            f"{base}/records/{secret}", params={"purpose": PURPOSE}, headers=auth(tokens["no-grant"])
        ).status_code
        == 404
    )
    assert _reads(engine) == []
    # With a grant but no purpose: not listed (reading a restricted item needs a stated purpose).
    assert listings(tokens["item-grantee"], None) == nothing
    assert listings(tokens["item-grantee"], "   ") == nothing
    assert _reads(engine) == []
    # With a grant and a purpose: listed everywhere, each item a logged read with the purpose.
    for who in ("item-grantee", "case-grantee"):
        before = len(_reads(engine))
        assert listings(tokens[who], PURPOSE) == everything, who
        reads = _reads(engine)[before:]
        assert {(a, p) for a, _s, p, _v in reads} == {(f"user:{who}", PURPOSE)}
        logged = {(sid, via) for _a, sid, _p, via in reads}
        assert {
            (secret, "records"),
            (secret, "timeline-api"),
            (recording, "timeline-api"),
            (scan, "timeline-api"),
            (recording, "links"),
            (scan, "links"),
            (secret, "coverage"),
            (secret, "search"),
            (recording, "media"),
            (scan, "media"),
        } <= logged, logged
    # The unmarked items are listed for everyone as before.
    r = httpx.get(f"{base}/records", headers=auth(tokens["no-grant"])).json()
    assert {x["record_id"] for x in r} == {open_rid}
    assert plain in {
        x["media_id"] for x in httpx.get(f"{base}/media", headers=auth(tokens["no-grant"])).json()
    }
    # Coverage counts a granted recording for the grantee (the marked record is covered by it).
    cov = httpx.get(
        f"{base}/coverage", params={"purpose": PURPOSE}, headers=auth(tokens["case-grantee"])
    ).json()
    assert recording in next(x for x in cov["records"] if x["record_id"] == secret)["recordings"]
    # The party view, for auditors: the granted auditor with a purpose sees the marked items.
    for who, want in (("aud-plain", set()), ("aud-granted", {secret, recording})):
        for purpose in (None, PURPOSE):
            p = {"purpose": purpose} if purpose else {}
            view = httpx.get(f"{url}/api/v1/parties/{party_id}", params=p, headers=auth(auditors[who])).json()
            shown = {x["record_id"] for x in view["records"]} | {x["media_id"] for x in view["recordings"]}
            assert shown & {secret, recording, scan} == (want if purpose else set()), (who, purpose)
            assert open_rid in shown
    assert {(sid, via) for a, sid, _p, via in _reads(engine) if a == "user:aud-granted"} == {
        (secret, "party"),
        (recording, "party"),
    }
    # Revoking closes the listings again.
    with Session(engine) as s:
        gids = [g.id for g in s.exec(select(Grant).where(Grant.user_name == "case-grantee"))]
    for gid in gids:
        assert httpx.post(f"{rm}/grants/{gid}/revoke", headers=auth(clerk)).status_code == 200
    assert listings(tokens["case-grantee"], PURPOSE) == nothing

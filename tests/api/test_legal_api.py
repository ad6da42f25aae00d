"""Legal review through the real API (uvicorn) on PostgreSQL: the contract, the gate's 409, every
endpoint for each role that may and each that may not use it, and bad input that changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.db import session_scope
from archive.models import Event
from archive.workdays.services import set_overrides
from tests.archive.legal.legal_factories import POINTS, World, counts, make_case, make_users
from tests.case_factories import T, auth, record_body
from tests.conftest import LiveAPI

STATUSES = {
    "not-required",
    "awaiting-submission",
    "pending",
    "returned",
    "disapproved",
    "escalated",
    "approved",
    "voided",
}


def fill_future_years(engine: Engine, users: dict[str, Any]) -> None:
    """The live API runs on the real clock: years past the holiday library get a stand-in arrangement
    (weekends only), so these tests do not depend on the day they run."""
    years = {
        str(y): {"holidays": [f"{y}-01-01"], "workdays": [], "source": "test stand-in"}
        for y in range(2027, 2031)
    }
    with session_scope(engine) as s:
        set_overrides(s, users["clerk"], {"years": years}, "tests run on the real clock")


@pytest.fixture
def w(live_api: LiveAPI, engine: Engine) -> World:
    users, tokens = make_users(engine)
    fill_future_years(engine, users)
    case_id, report, document, media = make_case(engine, users)
    return World(engine, users, tokens, case_id, report, document, media)


def proposal(w: World, **over: Any) -> dict[str, Any]:
    return {
        "decision_kind": "fine",
        "facts": "Loud music after midnight <script>window.__pwned=1</script>",
        "legal_basis": ["治安管理处罚法 第五十八条"],
        "evidence": [{"record_id": w.report, "version": 1}, {"media_id": w.media_id}],
        "materials": {
            "proposed-decision-document": [{"record_id": w.document, "version": 1}],
            "investigation-end-report": [{"record_id": w.report, "version": 1}],
        },
        "amounts": {"fine": "2000"},
        "attest": True,
        **over,
    }


class Client:
    def __init__(self, url: str, w: World) -> None:
        self.url, self.w = url, w

    def __call__(self, method: str, path: str, who: str, **kw: Any) -> httpx.Response:
        return httpx.request(
            method, f"{self.url}/api/v1{path}", headers=auth(self.w.tokens[who]), timeout=30, **kw
        )


def approve(api: Client, sub_id: str, who: str = "lr1") -> httpx.Response:
    for p in POINTS:
        r = api("PUT", f"/legal-reviews/{sub_id}/answers/{p}", who, json={"result": "pass"})
        assert r.status_code == 200, r.text
    return api(
        "POST",
        f"/legal-reviews/{sub_id}/opinion",
        who,
        json={"outcome": "approve", "reasons": "lawful", "attest": True},
    )


def test_contract_and_gate(live_api: LiveAPI, w: World) -> None:
    api = Client(live_api.url, w)
    case = f"/cases/{w.case_id}"
    st = api("GET", f"{case}/legal-review", "clerk").json()
    assert {"required", "rule", "status", "due"} <= set(st) and st["status"] == "awaiting-submission"
    assert st["required"] is False and st["rule"] is None and st["due"] is None

    refused = api("PATCH", case, "clerk", json={"stage": "decision"})
    assert refused.status_code == 409 and "proposed decision" in refused.json()["detail"]

    sub = api("POST", f"{case}/legal-review/submissions", "rev1", json=proposal(w))
    assert sub.status_code == 201, sub.text
    sub_id = sub.json()["id"]
    st = api("GET", f"{case}/legal-review", "clerk").json()
    assert st["status"] == "pending" and st["required"] is True and st["rule"] == "administrative-penalty"
    assert st["due"] is not None and st["status"] in STATUSES
    for stage in ("decision", "service", "execution"):
        refused = api("PATCH", case, "clerk", json={"stage": stage})
        assert refused.status_code == 409 and "legal review" in refused.json()["detail"]
    rec = api(
        "POST", f"{case}/records", "clerk", json=record_body(T, T, [], stage="decision", doc_kind="decision")
    )
    assert rec.status_code == 409 and "legal review" in rec.json()["detail"]
    # Each refusal is on the case's record, after the refused change rolled back.
    with Session(w.engine) as s:
        refusals = list(
            s.exec(select(Event).where(Event.action == "legal.gate.refused", Event.subject_id == w.case_id))
        )
    assert len(refusals) == 5 and all(e.outcome == "denied" and e.actor == "user:clerk" for e in refusals)
    assert refusals[0].details["request"] == f"PATCH /api/v1/cases/{w.case_id}"

    assert approve(api, sub_id).status_code == 201
    st = api("GET", f"{case}/legal-review", "lr1").json()
    assert st["status"] == "approved" and st["opinion"]["outcome_zh"] == "通过"
    assert [c["result"] for c in st["checklist"]] == ["pass"] * 10
    moved = api("PATCH", case, "clerk", json={"stage": "decision"})
    assert moved.status_code == 200 and moved.json()["stage"] == "decision"
    rec = api(
        "POST", f"{case}/records", "clerk", json=record_body(T, T, [], stage="decision", doc_kind="decision")
    )
    assert rec.status_code == 201

    # An amendment voids the approval; the status says so until the new version is decided.
    v2 = api(
        "POST",
        f"{case}/legal-review/submissions",
        "rev1",
        json={**proposal(w), "amends": 1, "amounts": {"fine": "500"}},
    )
    assert v2.status_code == 201 and v2.json()["version"] == 2
    history = api("GET", f"{case}/legal-review", "clerk").json()["history"]
    assert [(h["version"], h["state"]) for h in history] == [(2, "pending"), (1, "voided")]
    rec = api(
        "POST", f"{case}/records", "clerk", json=record_body(T, T, [], stage="decision", doc_kind="decision")
    )
    assert rec.status_code == 409 and "legal review" in rec.json()["detail"]
    withdrawn = api("POST", f"/legal-reviews/{v2.json()['id']}/withdraw", "rev1", json={"reason": "paid"})
    assert withdrawn.status_code == 200
    assert api("GET", f"{case}/legal-review", "clerk").json()["status"] == "awaiting-submission"


def test_every_endpoint_for_every_role(live_api: LiveAPI, w: World, engine: Engine) -> None:
    api = Client(live_api.url, w)
    with session_scope(engine) as s:
        from archive.accounts import services as accounts
        from archive.accounts.models import Role

        w.tokens["rev2"] = accounts.add_user(s, "rev2", Role.REVIEWER)[1]
    case = f"/cases/{w.case_id}"

    def refused(method: str, path: str, roles: list[str], **kw: Any) -> None:
        for who in roles:
            before = counts(engine)
            r = api(method, path, who, **kw)
            assert r.status_code in (403, 404), (who, method, path, r.status_code, r.text)
            # Only the refusal itself is logged (access.denied), nothing else changes.
            after = counts(engine)
            assert after[:-1] == before[:-1] and after[-1] - before[-1] <= 1, (who, path)

    # Before any submission legal staff do not see the case (need-to-know).
    refused("GET", f"{case}/legal-review", ["off1", "rev2", "lr1", "appr"])
    for who in ("clerk", "rev1", "root", "aud"):
        assert api("GET", f"{case}/legal-review", who).status_code == 200, who

    # Marks: records managers and admins.
    refused(
        "POST",
        f"{case}/legal-review/marks",
        ["rev1", "rev2", "lr1", "appr", "aud", "off1"],
        json={"mark": "complex", "reason": "r"},
    )
    assert (
        api(
            "POST", f"{case}/legal-review/marks", "clerk", json={"mark": "complex", "reason": "r"}
        ).status_code
        == 201
    )
    assert (
        api(
            "POST", f"{case}/legal-review/marks", "root", json={"mark": "major-rights", "reason": "r"}
        ).status_code
        == 201
    )

    # Submit / amend / withdraw: the handling side (assigned reviewer, records manager, admin).
    subs = f"{case}/legal-review/submissions"
    refused("POST", subs, ["rev2", "lr1", "appr", "aud", "off1"], json=proposal(w))
    v1 = api("POST", subs, "rev1", json=proposal(w)).json()
    v2 = api("POST", subs, "clerk", json={**proposal(w), "amends": 1}).json()
    v3 = api("POST", subs, "root", json={**proposal(w), "amends": 2}).json()
    assert (v1["version"], v2["version"], v3["version"]) == (1, 2, 3)
    refused(
        "POST",
        f"/legal-reviews/{v3['id']}/withdraw",
        ["rev2", "lr1", "appr", "aud", "off1"],
        json={"reason": "r"},
    )
    assert api("POST", f"/legal-reviews/{v3['id']}/withdraw", "root", json={"reason": "r"}).status_code == 200
    v4 = api("POST", subs, "clerk", json=proposal(w)).json()
    assert (
        api("POST", f"/legal-reviews/{v4['id']}/withdraw", "clerk", json={"reason": "r"}).status_code == 200
    )
    v5 = api("POST", subs, "rev1", json=proposal(w)).json()
    assert api("POST", f"/legal-reviews/{v5['id']}/withdraw", "rev1", json={"reason": "r"}).status_code == 200
    sub = api("POST", subs, "rev1", json=proposal(w)).json()

    # Now the legal office sees the case.
    for who in ("lr1", "appr"):
        assert api("GET", f"{case}/legal-review", who).status_code == 200, who

    # Answers and the opinion: legal reviewers only.
    point = f"/legal-reviews/{sub['id']}/answers/clear-facts"
    refused("PUT", point, ["clerk", "rev1", "rev2", "appr", "aud", "off1", "root"], json={"result": "pass"})
    opinion = f"/legal-reviews/{sub['id']}/opinion"
    body = {"outcome": "disapprove", "reasons": "no", "attest": True}
    refused("POST", opinion, ["clerk", "rev1", "rev2", "appr", "aud", "off1", "root"], json=body)
    assert api("PUT", point, "lr1", json={"result": "pass"}).status_code == 200
    assert api("POST", opinion, "lr1", json=body).status_code == 201

    # Escalation: the handling side; collective discussion: approvers.
    esc = f"/legal-reviews/{sub['id']}/escalation"
    refused("POST", esc, ["rev2", "lr1", "appr", "aud", "off1"], json={"reason": "we disagree"})
    assert api("POST", esc, "rev1", json={"reason": "we disagree"}).status_code == 201
    col = f"/legal-reviews/{sub['id']}/collective"
    cbody = {"outcome": "uphold-opinion", "reasons": "the opinion is right", "participants": ["局长"]}
    refused("POST", col, ["clerk", "rev1", "rev2", "lr1", "aud", "off1", "root"], json=cbody)
    assert api("POST", col, "appr", json=cbody).status_code == 200
    assert api("GET", f"{case}/legal-review", "clerk").json()["status"] == "escalated"

    # Lists across cases and the catalogue.
    refused("GET", "/legal-reviews?overdue=true", ["rev1", "rev2", "off1"])
    for who in ("lr1", "appr", "aud", "clerk", "root"):
        r = api("GET", "/legal-reviews", who, params={"overdue": "true"})
        assert r.status_code == 200 and r.json()["total"] == 0, who
    refused("GET", "/legal/catalogue", ["off1"])
    for who in ("clerk", "rev1", "lr1", "appr", "aud", "root"):
        assert api("GET", "/legal/catalogue", who).json()["version"] == 1, who
    cat = api("GET", "/legal/catalogue", "root").json()["body"]
    cat["review_working_days"] = 3
    refused(
        "PUT",
        "/legal/catalogue",
        ["clerk", "rev1", "lr1", "appr", "aud", "off1"],
        json={"body": cat, "reason": "r"},
    )
    installed = api(
        "PUT", "/legal/catalogue", "root", json={"body": cat, "reason": "provincial rule of 2026"}
    )
    assert installed.status_code == 200 and installed.json()["version"] == 2


def test_bad_input_names_what_is_wrong(live_api: LiveAPI, w: World, engine: Engine) -> None:
    api = Client(live_api.url, w)
    other, other_report, _, other_media = make_case(engine, w.users, number="L-2", officer="4711")
    subs = f"/cases/{w.case_id}/legal-review/submissions"
    sub = api("POST", subs, "rev1", json=proposal(w)).json()
    before = counts(engine)

    def bad(method: str, path: str, who: str, status: int, words: str, **kw: Any) -> None:
        r = api(method, path, who, **kw)
        assert r.status_code == status and words in r.json()["detail"], (path, r.status_code, r.text)
        assert counts(engine)[:-1] == before[:-1]

    bad(
        "PUT",
        f"/legal-reviews/{sub['id']}/answers/mood",
        "lr1",
        422,
        "unknown checklist point",
        json={"result": "pass"},
    )
    bad(
        "POST",
        f"/legal-reviews/{sub['id']}/opinion",
        "lr1",
        422,
        "opinion text",
        json={"outcome": "return", "reasons": "", "attest": True},
    )
    bad(
        "POST",
        subs,
        "rev1",
        422,
        "is not a record of case L-1",
        json={**proposal(w, evidence=[{"record_id": other_report, "version": 1}]), "amends": 1},
    )
    bad(
        "POST",
        subs,
        "rev1",
        422,
        "is not linked to case L-1",
        json={**proposal(w, evidence=[{"media_id": other_media}]), "amends": 1},
    )
    bad(
        "POST",
        subs,
        "rev1",
        422,
        "investigation-end-report",
        json={
            **proposal(
                w, materials={"proposed-decision-document": [{"record_id": w.document, "version": 1}]}
            ),
            "amends": 1,
        },
    )
    bad(
        "POST",
        f"/legal-reviews/{sub['id']}/opinion",
        "clerk",
        403,
        "may not",
        json={"outcome": "approve", "reasons": "x", "attest": True},
    )
    for p in POINTS[:-1]:
        api("PUT", f"/legal-reviews/{sub['id']}/answers/{p}", "lr1", json={"result": "pass"})
    api(
        "PUT",
        f"/legal-reviews/{sub['id']}/answers/{POINTS[-1]}",
        "lr1",
        json={"result": "fail", "note": "a crime is suspected"},
    )
    before = counts(engine)
    bad(
        "POST",
        f"/legal-reviews/{sub['id']}/opinion",
        "lr1",
        422,
        "failed checklist points: crime-transfer",
        json={"outcome": "approve", "reasons": "x", "attest": True},
    )
    api(
        "POST",
        f"/legal-reviews/{sub['id']}/withdraw",
        "rev1",
        json={"reason": "transferred to the judiciary"},
    )
    before = counts(engine)
    bad(
        "POST",
        f"/legal-reviews/{sub['id']}/opinion",
        "lr1",
        409,
        "withdrawn",
        json={"outcome": "return", "reasons": "x", "attest": True},
    )
    assert other

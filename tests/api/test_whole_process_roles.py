"""The remaining whole-process routes, each for every role that may and may not use it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from tests.case_factories import T, auth, media_row, new_case, record_body
from tests.conftest import LiveAPI

ROLES = {
    "clerk": "records-manager",
    "root": "admin",
    "aud": "auditor",
    "rev1": "reviewer",
    "rev2": "reviewer",
    "0815": "officer",
    "appr": "approver",
}


def test_route_matrix(live_api: LiveAPI, make_user: Any, engine: Engine) -> None:
    url = live_api.url
    tok = {name: make_user(name, role) for name, role in ROLES.items()}
    case = new_case(url, tok["clerk"], number="ROLES-1", reviewers=["rev1"])
    cid = case["id"]
    rid = httpx.post(
        f"{url}/api/v1/cases/{cid}/records",
        json=record_body(T, T + timedelta(minutes=5), []),
        headers=auth(tok["clerk"]),
    ).json()["record"]["record_id"]
    person = {
        "kind": "person",
        "name": "赵六",
        "id_doc_type": "resident-id",
        "id_number": "11010519491231002X",
    }
    assert (
        httpx.post(f"{url}/api/v1/cases/{cid}/parties", json=person, headers=auth(tok["clerk"])).status_code
        == 201
    )
    media = media_row(engine, recorded_at=T)

    def code(method: str, path: str, who: str, **kw: Any) -> int:
        return httpx.request(method, f"{url}{path}", headers=auth(tok[who]), **kw).status_code

    every = set(ROLES)
    find = {"kind": "person", "id_doc_type": "resident-id", "id_number": "11010519491231002X"}
    matrix: list[tuple[str, str, dict[str, Any], set[str], int]] = [
        ("GET", "/api/v1/recording-items/versions", {}, every, 403),
        ("GET", "/api/v1/parties", {"params": find}, {"clerk", "root", "aud"}, 403),
        ("GET", "/api/v1/me/signing-keys", {}, every, 403),
        ("GET", f"/api/v1/cases/{cid}/signatures", {}, {"clerk", "root", "aud", "rev1"}, 404),
        ("GET", "/api/v1/restricted/grants", {}, {"clerk", "root", "aud"}, 403),
        ("GET", "/api/v1/restricted/marks", {}, {"clerk", "root", "aud"}, 403),
        ("GET", "/api/v1/restricted/mine", {}, every, 403),
        ("GET", "/api/v1/oversight/warnings", {}, {"root", "aud"}, 403),
        ("GET", "/api/v1/oversight/access", {}, {"root", "aud"}, 403),
        ("GET", "/api/v1/copyout", {}, every, 403),
        ("GET", f"/api/v1/cases/{cid}/coverage", {}, {"clerk", "root", "aud", "rev1"}, 404),
    ]
    for method, path, kw, allowed, refused in matrix:
        for who in ROLES:
            want = 200 if who in allowed else refused
            assert code(method, path, who, **kw) == want, (method, path, who)
    # Marks: lifting is the records office's; a lift needs a reason.
    mark = httpx.post(
        f"{url}/api/v1/restricted/marks",
        json={"subject_kind": "media", "subject_id": media, "sensitivity": "privacy", "reason": "面部"},
        headers=auth(tok["clerk"]),
    ).json()
    lift = f"/api/v1/restricted/marks/{mark['id']}/lift"
    for who in ("aud", "rev1", "0815", "appr"):
        assert code("POST", lift, who, json={"reason": "x"}) == 403, who
    assert code("POST", lift, "clerk", json={"reason": " "}) == 422
    assert code("POST", lift, "root", json={"reason": "已脱敏"}) == 200
    assert code("POST", lift, "clerk", json={"reason": "again"}) == 404
    # Copy-out requests: reviewers, the records office, admins and approvers ask; officers, auditors do not.
    for who, want in {"rev1": 201, "clerk": 201, "root": 201, "appr": 201, "0815": 403, "aud": 403}.items():
        body = {"kind": "case-export", "subject_id": cid, "purpose": f"{who} 用途"}
        assert code("POST", "/api/v1/copyout", who, json=body) == want, who
    # Signing a version: whoever can read the record (with their own registered key).
    assert (
        code(
            "POST",
            f"/api/v1/cases/{cid}/records/{rid}/versions/1/signatures",
            "rev2",
            json={"key_id": "x", "signature": "x"},
        )
        == 404
    )

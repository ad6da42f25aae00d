"""Parties through the real API: identity numbers encrypted with a key outside the database, masked
for roles that do not need them, one party across cases, the party view, bad input, roles."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from archive.models import Event
from archive.parties.models import CaseParty, Party
from tests.case_factories import T, auth, media_row, new_case, record_body
from tests.conftest import LiveAPI

ID = "11010519491231002X"
PERSON = {"kind": "person", "name": "张三", "id_doc_type": "resident-id", "id_number": ID, "role": "subject"}


def resident_id(serial: int) -> str:
    """A valid resident identity number (GB 11643 check character) for test person ``serial``."""
    body = f"11010519800101{serial:03d}"
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(body))
    return body + "10X98765432"[total % 11]


def _count(engine: Engine, model: Any) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def test_parties_encrypted_masked_and_found_together(
    live_api: LiveAPI, make_user: Any, engine: Engine, env: dict[str, str]
) -> None:
    url = live_api.url
    clerk = make_user("clerk", "records-manager")
    rev = make_user("rev1", "reviewer")
    aud = make_user("aud", "auditor")
    media = media_row(engine, recorded_at=T + timedelta(minutes=1))
    c1 = new_case(url, clerk, number="P-1", reviewers=["rev1"])
    c2 = new_case(url, clerk, number="P-2")
    r = httpx.post(
        f"{url}/api/v1/cases/{c1['id']}/records",
        json=record_body(T, T + timedelta(minutes=5), ["0815"]),
        headers=auth(clerk),
    )
    assert r.status_code == 201 and r.json()["linked_media"] == [media]
    first = httpx.post(f"{url}/api/v1/cases/{c1['id']}/parties", json=PERSON, headers=auth(rev))
    assert first.status_code == 201, first.text
    assert first.json()["id_number"] == "**************002X" and first.json()["id_number_masked"]
    # The same person (full-width digits and spaces normalise) in another case is the same party.
    again = {**PERSON, "id_number": "\uff11\uff11\uff10\uff11\uff10\uff15 19491231002x", "role": "suspect"}
    second = httpx.post(f"{url}/api/v1/cases/{c2['id']}/parties", json=again, headers=auth(clerk))
    assert second.status_code == 201 and second.json()["id"] == first.json()["id"]
    assert second.json()["id_number"] == ID and not second.json()["id_number_masked"]
    pid = first.json()["id"]
    # Clear for the records office, masked for the reviewer and the auditor.
    seen = {
        who: httpx.get(f"{url}/api/v1/cases/{c1['id']}/parties", headers=auth(tok)).json()[0]["id_number"]
        for who, tok in (("clerk", clerk), ("rev", rev), ("aud", aud))
    }
    assert seen == {"clerk": ID, "rev": "**************002X", "aud": "**************002X"}
    # Not in the database, not in the custody log: only ciphertext and the last four characters.
    with Session(engine) as s:
        dump = " ".join(str(v) for row in s.execute(text("SELECT * FROM parties")) for v in row)
        assert ID not in dump and "19491231" not in dump and "v1:" in dump
        log = " ".join(str(e.details) for e in s.exec(select(Event)))
        assert "19491231" not in log
        assert s.exec(select(Event).where(Event.action == "party.id.read")).first() is not None
    key = Path(env["CUSTODY_DATA_DIR"]) / "keys" / "party-id.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # The party view: both cases, the record, the recording.
    view = httpx.get(f"{url}/api/v1/parties/{pid}", headers=auth(aud))
    assert view.status_code == 200, view.text
    v = view.json()
    assert sorted(c["number"] for c in v["cases"]) == ["P-1", "P-2"]
    assert [r["case_id"] for r in v["records"]] == [c1["id"]]
    assert [m["media_id"] for m in v["recordings"]] == [media]
    assert v["party"]["labels_zh"]["kind"] == "自然人"
    found = httpx.get(
        f"{url}/api/v1/parties",
        params={"kind": "person", "id_doc_type": "resident-id", "id_number": ID.lower()},
        headers=auth(aud),
    )
    assert found.status_code == 200 and [p["id"] for p in found.json()] == [pid]


def test_party_bad_input_and_roles(live_api: LiveAPI, make_user: Any, engine: Engine) -> None:
    url = live_api.url
    tokens = {
        "clerk": make_user("clerk", "records-manager"),
        "admin": make_user("root", "admin"),
        "auditor": make_user("aud", "auditor"),
        "assigned": make_user("rev1", "reviewer"),
        "other": make_user("rev2", "reviewer"),
        "officer": make_user("0815", "officer"),
    }
    case = new_case(url, tokens["clerk"], number="P-3", reviewers=["rev1"])
    add = f"{url}/api/v1/cases/{case['id']}/parties"
    before = (_count(engine, Party), _count(engine, CaseParty), _count(engine, Event))
    for bad, needle in [
        ({**PERSON, "id_number": "12345"}, "resident identity"),
        ({**PERSON, "id_number": "110105194912310021"}, "resident identity"),
        ({**PERSON, "id_doc_type": "credit-code"}, "credit code"),
        ({**PERSON, "id_doc_type": "library-card"}, "id_doc_type"),
        ({**PERSON, "name": "   "}, "name"),
        ({**PERSON, "id_doc_type": "passport", "id_number": "E1;DROP"}, "letters or digits"),
    ]:
        r = httpx.post(add, json=bad, headers=auth(tokens["clerk"]))
        assert r.status_code == 422 and needle in r.json()["detail"], (bad, r.text)
    assert (_count(engine, Party), _count(engine, CaseParty), _count(engine, Event)) == before
    org = {
        "kind": "organisation",
        "name": "某某商贸有限公司",
        "id_doc_type": "credit-code",
        "id_number": "91110000600037341L",
    }
    expect_add = {"clerk": 201, "admin": 201, "assigned": 201, "auditor": 403, "other": 404, "officer": 404}
    for n, (who, code) in enumerate(expect_add.items()):
        person = {**PERSON, "name": f"证人{n}", "id_number": resident_id(n), "role": "witness"}
        r = httpx.post(add, json=person, headers=auth(tokens[who]))
        assert r.status_code == code, (who, r.text)
    assert httpx.post(add, json=org, headers=auth(tokens["clerk"])).status_code == 201
    r = httpx.post(add, json=org, headers=auth(tokens["clerk"]))
    assert r.status_code == 422 and "already named" in r.json()["detail"]
    pid = httpx.get(add, headers=auth(tokens["clerk"])).json()[0]["id"]
    expect_list = {"clerk": 200, "admin": 200, "assigned": 200, "auditor": 200, "other": 404, "officer": 404}
    for who, code in expect_list.items():
        assert httpx.get(add, headers=auth(tokens[who])).status_code == code, who
    expect_view = {"clerk": 200, "admin": 200, "auditor": 200, "assigned": 403, "other": 403, "officer": 403}
    for who, code in expect_view.items():
        assert httpx.get(f"{url}/api/v1/parties/{pid}", headers=auth(tokens[who])).status_code == code, who
    assert httpx.get(f"{url}/api/v1/parties/nope", headers=auth(tokens["auditor"])).status_code == 404

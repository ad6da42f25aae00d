"""Whole-process recording on the embedded SQLite default, through the real API (uvicorn): coverage,
parties, signatures, restricted reads, copy-out, the warnings run and the access query."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine

from archive.accounts import services as accounts
from archive.accounts.models import Role
from archive.config import get_settings
from archive.db import make_engine, session_scope
from archive.signatures.document import record_document
from archive.signing import canonical_json, key_id_for, public_key_pem
from migrations import migrate
from tests.case_factories import T, auth, media_row, new_case, record_body
from tests.conftest import LiveAPI, free_port

M = timedelta(minutes=1)


@pytest.fixture
def sqlite_api(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LiveAPI, Engine]]:
    url = f"sqlite:///{tmp_path / 'custody.db'}"
    monkeypatch.setenv("CUSTODY_DATABASE_URL", url)
    get_settings.cache_clear()
    migrate(get_settings())
    engine = make_engine(url)
    port = free_port()
    api = LiveAPI(f"http://127.0.0.1:{port}", port, {**env, "CUSTODY_DATABASE_URL": url}, tmp_path)
    api.start()
    yield api, engine
    api.stop()
    engine.dispose()


def test_whole_process_on_sqlite(sqlite_api: tuple[LiveAPI, Engine]) -> None:
    api, engine = sqlite_api
    url = api.url
    with session_scope(engine) as s:
        clerk = accounts.add_user(s, "clerk", Role.RECORDS_MANAGER)[1]
        rev = accounts.add_user(s, "rev1", Role.REVIEWER)[1]
        aud = accounts.add_user(s, "aud", Role.AUDITOR)[1]
        appr = accounts.add_user(s, "appr", Role.APPROVER)[1]
    media = media_row(engine, recorded_at=T, duration_s=4 * 60)
    case = new_case(url, clerk, number="SQ-1", reviewers=["rev1"])
    cid = case["id"]
    # Issue 10: the reviewer names only officers a records manager put on the case, and the
    # auto-link to a recording the reviewer could not see waits for the records manager.
    on_case = {"badge": "0815", "reason": "handling officer"}
    assert (
        httpx.post(f"{url}/api/v1/cases/{cid}/officers", json=on_case, headers=auth(clerk)).status_code == 201
    )
    r = httpx.post(
        f"{url}/api/v1/cases/{cid}/records", json=record_body(T, T + 10 * M, ["0815"]), headers=auth(rev)
    )
    assert r.status_code == 201, r.text
    rid = r.json()["record"]["record_id"]
    confirm = f"{url}/api/v1/cases/{cid}/media/{media}/confirm"
    assert httpx.post(confirm, headers=auth(clerk)).status_code == 200
    r = httpx.put(
        f"{url}/api/v1/cases/{cid}/records/{rid}/activity",
        json={"activity": "questioning-suspect"},
        headers=auth(rev),
    )
    assert r.status_code == 200, r.text
    assert (
        httpx.put(
            f"{url}/api/v1/cases/{cid}/records/{rid}/activity",
            json={"activity": "karaoke"},
            headers=auth(rev),
        ).status_code
        == 422
    )
    cov = httpx.get(f"{url}/api/v1/cases/{cid}/coverage", headers=auth(rev)).json()
    assert cov["records"][0]["status"] == "gaps" and cov["records"][0]["gaps"][0]["seconds"] == 360.0
    # Parties: encrypted, masked for the reviewer.
    person = {
        "kind": "person",
        "name": "王五",
        "id_doc_type": "resident-id",
        "id_number": "11010519491231002X",
    }
    assert (
        httpx.post(f"{url}/api/v1/cases/{cid}/parties", json=person, headers=auth(clerk)).status_code == 201
    )
    listed = httpx.get(f"{url}/api/v1/cases/{cid}/parties", headers=auth(rev)).json()
    assert listed[0]["id_number"].endswith("002X") and listed[0]["id_number_masked"]
    # Signatures: registered key, verified, countersigned.
    key = Ed25519PrivateKey.generate()
    r = httpx.post(
        f"{url}/api/v1/me/signing-keys",
        json={"public_key_pem": public_key_pem(key.public_key())},
        headers=auth(rev),
    )
    assert r.status_code == 201
    v1 = httpx.get(f"{url}/api/v1/cases/{cid}/records/{rid}", headers=auth(rev)).json()[0]
    sig = base64.b64encode(key.sign(canonical_json(record_document(v1)))).decode()
    sign = f"{url}/api/v1/cases/{cid}/records/{rid}/versions/1/signatures"
    bad = base64.b64encode(key.sign(b"other")).decode()
    assert (
        httpx.post(
            sign, json={"key_id": key_id_for(key.public_key()), "signature": bad}, headers=auth(rev)
        ).status_code
        == 422
    )
    r = httpx.post(sign, json={"key_id": key_id_for(key.public_key()), "signature": sig}, headers=auth(rev))
    assert r.status_code == 201, r.text
    kinds = sorted(
        x["kind"]
        for x in httpx.get(f"{url}/api/v1/cases/{cid}/records/{rid}/signatures", headers=auth(rev)).json()
    )
    assert kinds == ["archive", "author"]
    # Restricted read with a purpose; copy-out approval by a second person.
    mark = {"subject_kind": "record", "subject_id": rid, "sensitivity": "state-secret", "reason": "涉密"}
    assert httpx.post(f"{url}/api/v1/restricted/marks", json=mark, headers=auth(clerk)).status_code == 201
    read = f"{url}/api/v1/restricted/cases/{cid}/records/{rid}"
    assert httpx.get(read, params={"purpose": "x"}, headers=auth(rev)).status_code == 404
    grant = {"user_name": "rev1", "subject_kind": "case", "subject_id": cid, "reason": "承办"}
    assert httpx.post(f"{url}/api/v1/restricted/grants", json=grant, headers=auth(clerk)).status_code == 201
    assert httpx.get(read, params={"purpose": "审查"}, headers=auth(rev)).status_code == 200
    req = httpx.post(
        f"{url}/api/v1/copyout",
        json={"kind": "case-export", "subject_id": cid, "purpose": "移送"},
        headers=auth(rev),
    ).json()
    assert (
        httpx.post(f"{url}/api/v1/copyout/{req['id']}/approve", json={}, headers=auth(appr)).status_code
        == 200
    )
    # Oversight: the run, and the access log with the purpose.
    assert httpx.post(f"{url}/api/v1/oversight/warnings/run", headers=auth(aud)).status_code == 201
    w = httpx.get(f"{url}/api/v1/oversight/warnings", headers=auth(aud)).json()
    assert w["counts"]["gaps"] == 1
    acc = httpx.get(f"{url}/api/v1/oversight/access", params={"case_id": cid}, headers=auth(aud)).json()
    assert ("user:rev1", "restricted.read", "审查") in {
        (e["actor"], e["action"], e["purpose"]) for e in acc["items"]
    }
    # The grantee lists the marked record with a purpose (records, timeline, coverage, FTS5 search),
    # each a logged read; without a purpose it is absent.
    cases_url = f"{url}/api/v1/cases/{cid}"
    for path, params, pick in (
        (f"{cases_url}/records", {}, lambda j: {x["record_id"] for x in j}),
        (f"{cases_url}/timeline", {}, lambda j: {x.get("record_id") for x in j["items"]}),
        (f"{cases_url}/coverage", {}, lambda j: {x["record_id"] for x in j["records"]}),
        (f"{url}/api/v1/records/search", {"q": "driver green"}, lambda j: {x["record_id"] for x in j}),
    ):
        assert rid not in pick(httpx.get(path, params=params, headers=auth(rev)).json()), path
        r = httpx.get(path, params={**params, "purpose": "审查起诉"}, headers=auth(rev))
        assert rid in pick(r.json()), path
    acc = httpx.get(
        f"{url}/api/v1/oversight/access", params={"action": "restricted.read"}, headers=auth(aud)
    ).json()
    assert {e["details"]["via"] for e in acc["items"] if e["purpose"] == "审查起诉"} == {
        "records",
        "timeline-api",
        "coverage",
        "search",
    }
    # The recording-item list, versioned, changed with a reason (an empty one refused).
    items = httpx.get(f"{url}/api/v1/recording-items", headers=auth(clerk)).json()
    items["gap_tolerance_s"] = 600
    put = f"{url}/api/v1/recording-items"
    assert httpx.put(put, json={"body": items, "reason": " "}, headers=auth(clerk)).status_code == 422
    r = httpx.put(put, json={"body": items, "reason": "本地规定: 10 分钟"}, headers=auth(clerk))
    assert r.status_code == 200, r.text
    versions = httpx.get(f"{url}/api/v1/recording-items/versions", headers=auth(clerk)).json()
    assert [v["version"] for v in versions][-2:] == [1, 2] and versions[-1]["reason"] == "本地规定: 10 分钟"
    cov = httpx.get(f"{cases_url}/coverage", params={"purpose": "审查起诉"}, headers=auth(rev)).json()
    assert cov["item_list_version"] == 2 and cov["records"][0]["status"] == "covered"
    # The party view on SQLite.
    parties = httpx.get(f"{cases_url}/parties", headers=auth(clerk)).json()
    view = httpx.get(f"{url}/api/v1/parties/{parties[0]['id']}", headers=auth(aud)).json()
    assert [c["case_id"] for c in view["cases"]] == [cid] and media in {
        x["media_id"] for x in view["recordings"]
    }

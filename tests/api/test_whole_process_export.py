"""The case export carries coverage, signatures and restricted marks, and needs an approved copy-out
request; the offline verifier recomputes coverage and checks both kinds of signature. The verifier's
own copy of the coverage rule is checked against the archive's with hypothesis."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session

from archive.copyout.models import CopyOutRequest
from archive.coverage import logic
from archive.coverage.itemlist import Mode
from archive.export.services import VERIFIER
from archive.signatures.document import record_document
from archive.signing import canonical_json, key_id_for, public_key_pem
from archive.storage import MinioStore
from tests.case_factories import T, auth, media_row, new_case, record_body
from tests.conftest import LiveAPI, free_port

M = timedelta(minutes=1)


def _verifier() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_export_wp", VERIFIER)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


V = _verifier()


@pytest.fixture
def strict_api(env: dict[str, str], tmp_path: Path) -> Iterator[LiveAPI]:
    """The API with copy-out approval switched on, as it ships."""
    port = free_port()
    api = LiveAPI(f"http://127.0.0.1:{port}", port, {**env, "CUSTODY_COPYOUT_REQUIRED": "true"}, tmp_path)
    api.start()
    yield api
    api.stop()


def test_export_needs_approval_and_verifies_coverage_and_signatures(
    strict_api: LiveAPI, make_user: Any, engine: Engine, store: MinioStore, tmp_path: Path
) -> None:
    url = strict_api.url
    clerk = make_user("clerk", "records-manager")
    rev = make_user("rev1", "reviewer")
    appr = make_user("appr1", "approver")
    media = media_row(engine, recorded_at=T, duration_s=4 * 60, offset_s=30.0)
    store.put_bytes(store.originals, f"originals/{media}", b"x" * 1000, "video/mp4")
    case = new_case(url, clerk, number="EXP-1", reviewers=["rev1"])
    cid = case["id"]
    recs = f"{url}/api/v1/cases/{cid}/records"
    # The records manager puts the officer on the case (issue 10: a reviewer names only officers on it).
    on_case = {"badge": "0815", "reason": "handling officer"}
    assert (
        httpx.post(f"{url}/api/v1/cases/{cid}/officers", json=on_case, headers=auth(clerk)).status_code == 201
    )
    body = record_body(T, T + 10 * M, ["0815"], activity="questioning-suspect")
    r = httpx.post(recs, json=body, headers=auth(rev))
    assert r.status_code == 201, r.text
    rid = r.json()["record"]["record_id"]
    # The reviewer could not see the recording before: the auto-link waits for a records manager.
    confirm = f"{url}/api/v1/cases/{cid}/media/{media}/confirm"
    assert httpx.post(confirm, headers=auth(clerk)).status_code == 200
    # A bad activity in the record itself: 422 and no record stored.
    bad = httpx.post(recs, json=record_body(T, T + M, [], activity="karaoke"), headers=auth(rev))
    assert bad.status_code == 422 and len(httpx.get(recs, headers=auth(rev)).json()) == 1
    secret = httpx.post(recs, json=record_body(T, T + M, [], body="线人身份"), headers=auth(clerk)).json()
    sid = secret["record"]["record_id"]
    mark = {"subject_kind": "record", "subject_id": sid, "sensitivity": "privacy", "reason": "线人"}
    assert httpx.post(f"{url}/api/v1/restricted/marks", json=mark, headers=auth(clerk)).status_code == 201
    key = Ed25519PrivateKey.generate()
    kid = key_id_for(key.public_key())
    httpx.post(
        f"{url}/api/v1/me/signing-keys",
        json={"public_key_pem": public_key_pem(key.public_key())},
        headers=auth(rev),
    )
    v1 = httpx.get(f"{recs}/{rid}", headers=auth(rev)).json()[0]
    sig = base64.b64encode(key.sign(canonical_json(record_document(v1)))).decode()
    r = httpx.post(
        f"{recs}/{rid}/versions/1/signatures", json={"key_id": kid, "signature": sig}, headers=auth(rev)
    )
    assert r.status_code == 201
    # Copy-out: refused without an approved request of the caller's.
    r = httpx.post(f"{url}/api/v1/exports", json={"case": cid}, headers=auth(rev))
    assert r.status_code == 403 and "copy-out" in r.json()["detail"]
    req = httpx.post(
        f"{url}/api/v1/copyout",
        json={"kind": "case-export", "subject_id": cid, "purpose": "移送起诉"},
        headers=auth(rev),
    ).json()
    r = httpx.post(f"{url}/api/v1/exports", json={"case": cid, "copyout": req["id"]}, headers=auth(rev))
    assert r.status_code == 403  # still pending
    assert (
        httpx.post(f"{url}/api/v1/copyout/{req['id']}/approve", json={}, headers=auth(appr)).status_code
        == 200
    )
    r = httpx.post(f"{url}/api/v1/exports", json={"case": cid, "copyout": req["id"]}, headers=auth(clerk))
    assert r.status_code == 403  # another person's approval is not yours
    # Asking for everyone's client addresses without the audit permission: refused before the
    # approval is used (issue 10, finding 6).
    r = httpx.post(
        f"{url}/api/v1/exports",
        json={"case": cid, "copyout": req["id"], "addresses": True},
        headers=auth(rev),
    )
    assert r.status_code == 403 and "address" in r.json()["detail"], r.text
    with Session(engine) as s:
        approved = s.get(CopyOutRequest, req["id"])
        assert approved is not None and approved.used_count == 0
    r = httpx.post(
        f"{url}/api/v1/exports", json={"case": cid, "copyout": req["id"]}, headers=auth(rev), timeout=120
    )
    assert r.status_code == 200, r.text
    zpath = tmp_path / "export.zip"
    zpath.write_bytes(r.content)
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        case_doc = json.loads(zf.read("case.json"))
        cov = json.loads(zf.read("records/coverage.json"))
        sigs = json.loads(zf.read("records/signatures.json"))
        records = json.loads(zf.read("records/records.json"))
        names = zf.namelist()
    assert case_doc["copy_out"]["requested_by"] == "rev1" and case_doc["copy_out"]["approved_by"] == "appr1"
    assert case_doc["copy_out"]["purpose"] == "移送起诉"
    # The marked record is not exported: rev1 holds no grant.
    assert {x["record_id"] for x in records} == {rid} and "restricted.json" not in names
    assert [(x["record_id"], x["status"]) for x in cov["records"]] == [(rid, "gaps")]
    assert cov["recordings"][0]["media_id"] == media
    assert sorted(s["kind"] for s in sigs["signatures"]) == ["archive", "author"]
    done = subprocess.run(
        [sys.executable, str(VERIFIER), str(zpath)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"record {rid} v1: coverage recomputed: gaps, 1 gap(s)" in done.stdout
    assert f"author signature by user:rev1 verifies (key {kid})" in done.stdout
    assert "archive signature by archive verifies" in done.stdout
    # With a grant, the exporter gets the marked record and its mark.
    grant = {"user_name": "rev1", "subject_kind": "record", "subject_id": sid, "reason": "承办"}
    assert httpx.post(f"{url}/api/v1/restricted/grants", json=grant, headers=auth(clerk)).status_code == 201
    r = httpx.post(
        f"{url}/api/v1/exports", json={"case": cid, "copyout": req["id"]}, headers=auth(rev), timeout=120
    )
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        marks = json.loads(zf.read("restricted.json"))["marks"]
        assert {x["record_id"] for x in json.loads(zf.read("records/records.json"))} == {rid, sid}
    assert [(m["subject_id"], m["sensitivity"]) for m in marks] == [(sid, "privacy")]
    # An original's download for use outside the archive: approved, or refused.
    orig = f"{url}/api/v1/media/{media}/original"
    assert httpx.get(orig, headers=auth(clerk)).status_code == 403
    dl = httpx.post(
        f"{url}/api/v1/copyout",
        json={"kind": "original-download", "subject_id": media, "purpose": "鉴定"},
        headers=auth(clerk),
    ).json()
    httpx.post(f"{url}/api/v1/copyout/{dl['id']}/approve", json={}, headers=auth(appr))
    got = httpx.get(orig, params={"copyout": dl["id"]}, headers=auth(clerk))
    assert got.status_code == 200 and got.content == b"x" * 1000


def test_tampered_coverage_fails_the_verifier(tmp_path: Path) -> None:
    # The verifier's recomputation itself: a stated status that the spans contradict is a FAIL.
    c = V.Checker()
    t0 = "2024-06-10T10:00:00+00:00"
    doc = {
        "required_modes": ["av", "whole-process"],
        "recordings": [
            {
                "media_id": "m",
                "device_start": t0,
                "clock_offset_s": 0,
                "duration_s": 600,
                "span": [t0, "2024-06-10T10:10:00+00:00"],
            }
        ],
        "records": [
            {
                "record_id": "r",
                "version": 1,
                "start": t0,
                "end": "2024-06-10T10:20:00+00:00",
                "mode": "av",
                "tolerance_s": 30,
                "reason": "",
                "status": "covered",
                "gaps": [],
            }
        ],
    }
    z = tmp_path / "z.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("records/coverage.json", json.dumps(doc))
    with zipfile.ZipFile(z) as zf:
        V._check_whole_process(c, zf, {"records/coverage.json": {}}, {}, None)
    assert c.failures == 1


instant = st.integers(min_value=0, max_value=3000)


@settings(max_examples=300, deadline=None)
@given(
    spans=st.lists(st.tuples(instant, instant), max_size=12),
    a=instant,
    b=instant,
    tol=st.integers(min_value=0, max_value=120),
    mode=st.sampled_from([None, "text", "av", "whole-process"]),
    reason=st.sampled_from(["", "stated"]),
)
def test_verifier_rule_equals_the_archive_rule(
    spans: list[tuple[int, int]], a: int, b: int, tol: int, mode: str | None, reason: str
) -> None:
    base = V._when("2024-06-10T10:00:00Z")
    at = lambda s: base + timedelta(seconds=s)  # noqa: E731
    pairs = [(at(min(x, y)), at(max(x, y))) for x, y in spans]
    start, end = at(min(a, b)), at(max(a, b))
    ours = logic.measure_spans(
        (start, end), pairs, Mode(mode) if mode else None, tolerance_s=tol, reason=reason
    )
    status, gaps = V._coverage(start, end, V._merge(pairs), mode, tol, reason, ["av", "whole-process"])
    assert (status, gaps) == (ours.status.value, list(ours.gaps))

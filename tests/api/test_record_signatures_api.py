"""Signed text records: the author signs locally with `custody records sign` (the private key never
leaves the machine), the server verifies (422 and nothing stored otherwise), and the archive
countersigns every version either way."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from archive.models import Event
from archive.signatures.document import record_document
from archive.signatures.models import RecordSignature, UserKey
from archive.signing import Signature, canonical_json, key_id_for, public_key_pem, verify_with_public_key
from tests.case_factories import T, auth, new_case, record_body
from tests.conftest import ROOT, LiveAPI


def _cli(env: dict[str, str], token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env={**os.environ, **env, "CUSTODY_TOKEN": token},
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )


def _count(engine: Engine, model: Any) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def test_author_signs_locally_and_archive_countersigns(
    live_api: LiveAPI, make_user: Any, engine: Engine, tmp_path: Path
) -> None:
    url = live_api.url
    clerk = make_user("clerk", "records-manager")
    rev = make_user("rev1", "reviewer")
    case = new_case(url, clerk, number="S-1", reviewers=["rev1"])
    recs = f"{url}/api/v1/cases/{case['id']}/records"
    r = httpx.post(
        recs, json=record_body(T, T + timedelta(minutes=5), [], body="询问笔录 v1"), headers=auth(rev)
    )
    assert r.status_code == 201, r.text
    rid = r.json()["record"]["record_id"]
    r = httpx.post(
        f"{recs}/{rid}/versions",
        json=record_body(T, T + timedelta(minutes=6), [], body="询问笔录 v2"),
        headers=auth(rev),
    )
    assert r.status_code == 201
    key_file = tmp_path / "rev1.pem"
    done = _cli(live_api.env, rev, "records", "keygen", "--server", url, "--key", str(key_file))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    done = _cli(
        live_api.env, rev, "records", "sign", "--server", url, "--key", str(key_file), case["id"], rid
    )
    assert done.returncode == 0, done.stderr
    assert "version 2" in done.stdout
    sigs = httpx.get(f"{recs}/{rid}/signatures", headers=auth(clerk)).json()
    assert sorted((s["version"], s["kind"]) for s in sigs) == [(1, "archive"), (2, "archive"), (2, "author")]
    author = next(s for s in sigs if s["kind"] == "author")
    assert author["signer"] == "user:rev1"
    # Both signatures verify offline: the author's with the key on the author's machine, the
    # archive's with the key /api/v1/keys publishes.
    versions = httpx.get(f"{recs}/{rid}", headers=auth(clerk)).json()
    doc = record_document(versions[1])
    private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    verify_with_public_key(private.public_key(), doc, Signature(author["key_id"], author["signature_b64"]))
    archive_sig = next(s for s in sigs if s["kind"] == "archive" and s["version"] == 2)
    pem = next(
        k for k in httpx.get(f"{url}/api/v1/keys").json()["keys"] if k["key_id"] == archive_sig["key_id"]
    )
    pub = serialization.load_pem_public_key(pem["public_key_pem"].encode())
    assert isinstance(pub, Ed25519PublicKey)
    verify_with_public_key(pub, doc, Signature(archive_sig["key_id"], archive_sig["signature_b64"]))
    with Session(engine) as s:
        assert s.exec(select(Event).where(Event.action == "record.sign")).one().details["version"] == 2
        assert s.exec(select(Event).where(Event.action == "signing.key.register")).one()


def test_signatures_that_do_not_verify_store_nothing(
    live_api: LiveAPI, make_user: Any, engine: Engine
) -> None:
    url = live_api.url
    clerk = make_user("clerk", "records-manager")
    rev = make_user("rev1", "reviewer")
    make_user("rev2", "reviewer")
    officer = make_user("0815", "officer")
    case = new_case(url, clerk, number="S-2", reviewers=["rev1"])
    recs = f"{url}/api/v1/cases/{case['id']}/records"
    r = httpx.post(recs, json=record_body(T, T + timedelta(minutes=5), [], body="笔录"), headers=auth(clerk))
    rid = r.json()["record"]["record_id"]
    key = Ed25519PrivateKey.generate()
    kid = key_id_for(key.public_key())
    r = httpx.post(
        f"{url}/api/v1/me/signing-keys",
        json={"public_key_pem": public_key_pem(key.public_key())},
        headers=auth(rev),
    )
    assert r.status_code == 201 and r.json()["key_id"] == kid
    v1 = httpx.get(f"{recs}/{rid}", headers=auth(rev)).json()[0]
    good = base64.b64encode(key.sign(canonical_json(record_document(v1)))).decode()
    tampered = base64.b64encode(
        key.sign(canonical_json({**record_document(v1), "body_sha256": "0" * 64}))
    ).decode()
    before = (_count(engine, RecordSignature), _count(engine, UserKey), _count(engine, Event))
    sign = f"{recs}/{rid}/versions/1/signatures"
    for body, needle in [
        ({"key_id": kid, "signature": tampered}, "does not verify"),
        ({"key_id": kid, "signature": "not base64!"}, "does not verify"),
        ({"key_id": "0" * 16, "signature": good}, "not a registered key"),
    ]:
        r = httpx.post(sign, json=body, headers=auth(rev))
        assert r.status_code == 422 and needle in r.json()["detail"], r.text
    # Another user cannot use rev1's key.
    r = httpx.post(sign, json={"key_id": kid, "signature": good}, headers=auth(clerk))
    assert r.status_code == 422 and "not a registered key" in r.json()["detail"]
    for pem in ("garbage", public_key_pem(key.public_key())):
        r = httpx.post(f"{url}/api/v1/me/signing-keys", json={"public_key_pem": pem}, headers=auth(clerk))
        assert r.status_code in {409, 422}, r.text
    assert (_count(engine, RecordSignature), _count(engine, UserKey), _count(engine, Event)) == before
    # Roles: the signer must see the record (404 otherwise); the good signature is stored once.
    r = httpx.post(sign, json={"key_id": kid, "signature": good}, headers=auth(officer))
    assert r.status_code == 404
    r = httpx.post(sign, json={"key_id": kid, "signature": good}, headers=auth(rev))
    assert r.status_code == 201, r.text
    assert httpx.post(sign, json={"key_id": kid, "signature": good}, headers=auth(rev)).status_code == 409
    assert httpx.get(f"{recs}/{rid}/signatures", headers=auth(officer)).status_code == 404
    assert httpx.get(f"{url}/api/v1/me/signing-keys", headers=auth(rev)).json()[0]["key_id"] == kid

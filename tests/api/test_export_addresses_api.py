"""Issue 10, finding 6 over HTTP (in-process, each person at their own workstation address): a case
export carries the exporter's own client address and nobody else's; ``addresses: true`` (every
actor's address) only for a role holding the audit permission. Every role tried."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.case_factories import T, auth, record_body

ADDRS = {"clerk": "203.0.113.5", "bob": "198.51.100.22", "root": "192.0.2.77"}
ROLES = {
    "officer": "officer",
    "bob": "reviewer",
    "aud": "auditor",
    "clerk": "records-manager",
    "root": "admin",
    "approver": "approver",
    "legal": "legal-reviewer",
    "publisher": "publisher",
}


@pytest.fixture
def at(env: dict[str, str]) -> Iterator[Callable[[str], TestClient]]:
    """A client per person, each connecting from their own address."""
    app = create_app()
    clients: dict[str, TestClient] = {}

    def client(name: str) -> TestClient:
        if name not in clients:
            clients[name] = TestClient(app, client=(ADDRS.get(name, "192.0.2.200"), 50000)).__enter__()
        return clients[name]

    yield client
    for c in clients.values():
        c.__exit__(None, None, None)


def members(data: bytes, tmp: Path) -> list[tuple[str, bytes]]:
    path = tmp / "export.zip"
    path.write_bytes(data)
    with zipfile.ZipFile(path) as zf:
        return [("<zip>", data)] + [(n, zf.read(n)) for n in zf.namelist()]


def verifies(data: bytes, tmp: Path) -> str:
    path = tmp / "check.zip"
    path.write_bytes(data)
    script = tmp / "verify_export.py"
    with zipfile.ZipFile(path) as zf:
        script.write_bytes(zf.read("verify_export.py"))
    r = subprocess.run(
        [sys.executable, "-I", str(script), str(path)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout
    return r.stdout


def test_export_carries_only_the_exporters_address(
    at: Callable[[str], TestClient], make_user: Any, tmp_path: Path
) -> None:
    tok = {name: make_user(name, role) for name, role in ROLES.items()}
    made = at("clerk").post(
        "/api/v1/cases",
        json={"number": "IP-1", "title": "t", "kind": "criminal", "reviewers": ["bob"]},
        headers=auth(tok["clerk"]),
    )
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    wrote = at("bob").post(
        f"/api/v1/cases/{cid}/records",
        json=record_body(T, T + timedelta(minutes=5), []),
        headers=auth(tok["bob"]),
    )
    assert wrote.status_code == 201, wrote.text

    def export(who: str, **extra: Any) -> Any:
        return at(who).post("/api/v1/exports", json={"case": cid, **extra}, headers=auth(tok[who]))

    # Who may export at all is unchanged.
    for who in ("officer", "aud", "approver", "legal", "publisher"):
        assert export(who).status_code == 403, who
    # The records manager: the clerk's own address, the reviewer's nowhere in the package.
    r = export("clerk")
    assert r.status_code == 200, r.text
    for name, data in members(r.content, tmp_path):
        assert ADDRS["bob"].encode() not in data, name
    assert any(ADDRS["clerk"].encode() in d for _, d in members(r.content, tmp_path))
    assert f"client address '{ADDRS['clerk']}' matches its commitment" in verifies(r.content, tmp_path)
    # The reviewer: the other way round.
    r = export("bob")
    assert r.status_code == 200, r.text
    for name, data in members(r.content, tmp_path):
        assert ADDRS["clerk"].encode() not in data, name
    assert f"client address '{ADDRS['bob']}' matches its commitment" in verifies(r.content, tmp_path)
    # Every address: only with the audit permission (of the roles that export, the admin's).
    for who in ("clerk", "bob"):
        refused = export(who, addresses=True)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden", refused.text
    assert export("aud", addresses=True).status_code == 403  # audits, but exports nothing
    r = export("root", addresses=True)
    assert r.status_code == 200, r.text
    inflated = b"".join(d for _, d in members(r.content, tmp_path))
    assert ADDRS["bob"].encode() in inflated and ADDRS["clerk"].encode() in inflated
    out = verifies(r.content, tmp_path)
    assert f"client address '{ADDRS['bob']}' matches its commitment" in out
    # The admin's ordinary export discloses no one else's address either.
    r = export("root")
    assert r.status_code == 200
    for name, data in members(r.content, tmp_path):
        assert ADDRS["bob"].encode() not in data and ADDRS["clerk"].encode() not in data, name

"""Issue 10, finding 3 over HTTP (in-process) and the CLI: registering, listing and retiring devices
and listing the recordings flagged for their device, each route tried by every role that may and may
not use it; bad input (serial format, officer and pool together or neither, unknown officer) is a
422 that changes nothing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from api.app import create_app
from archive.models import Event, Outcome
from tests.api.test_approvals_api import ROLES, Sent
from tests.archive.accounts.test_devices import dock
from tests.case_factories import auth
from tests.conftest import ROOT


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[TestClient]:
    app = create_app()
    app.state.dispatcher = Sent()
    with TestClient(app) as c:
        yield c


@pytest.fixture
def tok(make_user: Any) -> dict[str, str]:
    out = {role: make_user(role.replace("-", ""), role) for role in ROLES if role != "officer"}
    out["officer"] = make_user("0815", "officer")
    make_user("4711", "officer")
    return out


def _changes(engine: Engine) -> int:
    with Session(engine) as s:
        return int(
            s.exec(select(func.count()).select_from(Event).where(Event.outcome != Outcome.DENIED)).one()
        )


MAY_MANAGE = {"records-manager", "admin"}
MAY_READ = {"records-manager", "admin", "auditor"}


def test_devices_by_role(client: TestClient, tok: dict[str, str], engine: Engine) -> None:
    c = client
    flagged = dock(engine, "4711", "BC-9")  # nobody registered BC-9
    for i, role in enumerate(ROLES):
        r = c.post(
            "/api/v1/devices",
            json={"serial": f"BC-{i}", "officer": "0815", "reason": "issued"},
            headers=auth(tok[role]),
        )
        assert r.status_code == (201 if role in MAY_MANAGE else 403), (role, r.text)
        for path in ("/api/v1/devices", "/api/v1/devices/flagged", "/api/v1/devices/BC-9"):
            r = c.get(path, headers=auth(tok[role]))
            assert r.status_code == (200 if role in MAY_READ else 403), (role, path, r.text)
        r = c.post("/api/v1/devices/BC-9/retire", json={"reason": "lost"}, headers=auth(tok[role]))
        assert r.status_code == (200 if role in MAY_MANAGE else 403), (role, r.text)
    listed = c.get("/api/v1/devices", headers=auth(tok["auditor"])).json()
    assert {d["serial"]: d["status"] for d in listed}["BC-9"] == "retired"
    assert [f["media_id"] for f in c.get("/api/v1/devices/flagged", headers=auth(tok["auditor"])).json()] == [
        flagged
    ]
    assert c.get("/api/v1/devices/flagged?serial=BC-1", headers=auth(tok["admin"])).json() == []
    # The item itself says so, to those who see it.
    for role in ("records-manager", "auditor"):
        item = c.get(f"/api/v1/media/{flagged}", headers=auth(tok[role])).json()
        assert item["device_flag"] == "unregistered-device", role
    # Registering BC-9 to the pool 4711 is in releases its recording.
    r = c.post(
        "/api/v1/devices",
        json={"serial": "BC-9", "pool": ["0815", "4711"], "reason": "back in service, shift B"},
        headers=auth(tok["records-manager"]),
    )
    assert (
        r.status_code == 201 and r.json()["pool"] == ["0815", "4711"] and r.json()["status"] == "registered"
    )
    assert c.get("/api/v1/devices/flagged", headers=auth(tok["admin"])).json() == []
    assert c.get(f"/api/v1/media/{flagged}", headers=auth(tok["auditor"])).json()["device_flag"] is None
    assert c.get("/api/v1/devices/NOPE", headers=auth(tok["admin"])).status_code == 404


def test_bad_registrations_are_422_and_change_nothing(
    client: TestClient, tok: dict[str, str], engine: Engine
) -> None:
    c = client
    rm = auth(tok["records-manager"])
    n = _changes(engine)
    for body, code in [
        ({"serial": "BC 1", "officer": "0815", "reason": "r"}, "device.invalid_serial"),
        ({"serial": "-x", "officer": "0815", "reason": "r"}, "device.invalid_serial"),
        ({"serial": "case-attachment", "officer": "0815", "reason": "r"}, "device.invalid_serial"),
        ({"serial": "BC-1", "reason": "r"}, "device.invalid_registration"),
        (
            {"serial": "BC-1", "officer": "0815", "pool": ["4711"], "reason": "r"},
            "device.invalid_registration",
        ),
        ({"serial": "BC-1", "officer": "nobody", "reason": "r"}, "device.invalid_registration"),
        ({"serial": "BC-1", "officer": "0815", "reason": " "}, "device.invalid_registration"),
    ]:
        r = c.post("/api/v1/devices", json=body, headers=rm)
        assert r.status_code == 422 and r.json()["code"] == code, (body, r.text)
    assert (
        c.post("/api/v1/devices", json={"serial": "BC-1", "officer": "0815"}, headers=rm).status_code == 422
    )
    r = c.post("/api/v1/devices/NOPE/retire", json={"reason": "lost"}, headers=rm)
    assert r.status_code == 404 and r.json()["code"] == "device.not_found"
    assert _changes(engine) == n
    assert c.get("/api/v1/devices", headers=rm).json() == []


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "--lang", "en", *args], capture_output=True, text=True, cwd=ROOT
    )


def test_cli_devices_and_approvals(
    env: dict[str, str], make_user: Any, engine: Engine, tmp_path: Any
) -> None:
    make_user("clerk", "records-manager")
    make_user("root", "admin")
    make_user("0815", "officer")
    make_user("rev", "reviewer")
    out = _cli("devices", "register", "BC-7", "--officer", "0815", "--reason", "issued", "--by", "clerk")
    assert out.returncode == 0 and "BC-7" in out.stdout and "0815" in out.stdout, out.stderr
    out = _cli("devices", "register", "BC-8", "--officer", "0815", "--reason", "issued", "--by", "rev")
    assert out.returncode != 0 and "may not register devices" in out.stderr
    out = _cli("devices", "register", "bad serial", "--officer", "0815", "--reason", "x", "--by", "clerk")
    assert out.returncode != 0 and "device serial" in out.stderr
    assert _cli("devices", "retire", "BC-7", "--reason", "broken", "--by", "root").returncode == 0
    out = _cli("devices", "list", "--by", "clerk")
    assert out.returncode == 0 and "BC-7  retired  0815" in out.stdout, out.stdout
    # The policy through the CLI: asked with --by, approved by a second person, then in force.
    import json

    from retention.policy import default_policy

    f = tmp_path / "p.json"
    f.write_text(json.dumps({**default_policy().to_json(), "rules": []}))
    out = _cli("retention", "policy", "--set", str(f), "--reason", "simpler", "--by", "clerk")
    assert out.returncode != 0 and "rules: []" in out.stderr
    f.write_text(json.dumps({**default_policy().to_json(), "default_months": 12}))
    assert _cli("retention", "policy", "--set", str(f), "--reason", "a year").returncode != 0  # no --by
    out = _cli("retention", "policy", "--set", str(f), "--reason", "a year", "--by", "clerk")
    assert out.returncode == 0 and "approval request 1" in out.stdout, out.stderr
    out = _cli("approvals", "approve", "1", "--by", "clerk")
    assert out.returncode != 0 and "their own request" in out.stderr
    out = _cli("approvals", "list", "--by", "root", "--state", "pending")
    assert out.returncode == 0 and out.stdout.startswith("1  pending  retention.policy"), out.stdout
    out = _cli("approvals", "approve", "1", "--by", "root")
    assert out.returncode == 0 and "approved" in out.stdout, out.stderr
    assert '"default_months": 12' in _cli("retention", "policy").stdout

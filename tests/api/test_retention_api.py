"""Retention through the HTTP API, the CLI, and the beat schedule."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.models import Event, Outcome
from archive.storage import MinioStore
from retention.policy import default_policy
from tests.conftest import ROOT, LiveAPI
from tests.retention.test_retention import archived
from workers.celery_app import make_celery, sweep_schedule


def test_sweep_schedule_means_what_it_says() -> None:
    daily = sweep_schedule("30 2 * * *")
    assert daily.minute == {30} and daily.hour == {2} and len(daily.day_of_month) == 31
    every_half_hour = sweep_schedule("*/30 * * * *")
    assert every_half_hour.minute == {0, 30} and len(every_half_hour.hour) == 24
    with pytest.raises(ValueError, match="5 fields"):
        sweep_schedule("*/30")
    beat = make_celery().conf.beat_schedule
    assert beat["retention-sweep"]["task"] == "custody.retention_sweep"
    assert beat["retention-sweep"]["schedule"].hour == {2}
    assert beat["retention-classify"]["task"] == "custody.retention_classify"


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_flags_holds_and_release_through_the_api(
    live_api: LiveAPI, make_user: Any, engine: Engine, store: MinioStore
) -> None:
    rev, rm, admin, officer = (
        make_user("rev1", "reviewer"),
        make_user("rm1", "records-manager"),
        make_user("adm", "admin"),
        make_user("0815", "officer"),
    )
    m = archived(engine, store, datetime.now(UTC) - timedelta(days=30))
    url = f"{live_api.url}/api/v1/media/{m.id}"
    # Reviewers see only media of their cases: this one is unlinked, so ask as records manager.
    before = httpx.get(f"{url}/retention", headers=_h(rm)).json()
    assert before["status"].startswith("not yet classified")

    r = httpx.post(f"{url}/flags", headers=_h(rm), json={"kind": "obstruction"})
    assert r.status_code == 422  # no reason, no flag
    r = httpx.post(f"{url}/flags", headers=_h(officer), json={"kind": "obstruction", "reason": "pushed"})
    assert r.status_code in (403, 404)
    r = httpx.post(
        f"{url}/flags", headers=_h(rm), json={"kind": "obstruction", "reason": "officer pushed at 00:42"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "permanent" and body["rule"] == "obstruction" and body["storage_legal_hold"]
    assert body["explanation"]["rules"][0]["rule"] == "default"

    r = httpx.post(f"{url}/holds", headers=_h(rm), json={"reason": "court order 7/2026"})
    assert r.status_code == 201 and r.json()["legal_hold"]
    hold_id = r.json()["holds"][0]["id"]
    rm2 = make_user("rm2", "records-manager")
    # Releasing a hold: a records manager asks, with a reason; another records manager approves
    # (issue 10, finding 4). Not an admin, not the one who asked.
    release = f"{live_api.url}/api/v1/holds/{hold_id}/release"
    assert httpx.post(release, headers=_h(admin), json={"reason": "done"}).status_code == 403
    r = httpx.post(release, headers=_h(rm), json={"reason": "order lifted"})
    assert r.status_code == 202 and r.json()["state"] == "pending", r.text
    req = r.json()["id"]
    assert httpx.get(f"{url}/retention", headers=_h(rm)).json()["legal_hold"]  # nothing happened yet
    approve = f"{live_api.url}/api/v1/approvals/{req}/approve"
    assert httpx.post(approve, headers=_h(rm), json={}).json()["code"] == "approval.own_request"
    assert httpx.post(approve, headers=_h(admin), json={}).status_code == 403
    r = httpx.post(approve, headers=_h(rm2), json={"reason": "order seen"})
    assert r.status_code == 200 and r.json()["state"] == "approved", r.text
    assert not httpx.get(f"{url}/retention", headers=_h(rm)).json()["legal_hold"]
    # Clearing a permanent flag: asked (202), then approved by an administrator.
    r = httpx.post(f"{url}/flags/obstruction/clear", headers=_h(rm), json={"reason": "wrong clip"})
    assert r.status_code == 202, r.text
    assert httpx.get(f"{url}/retention", headers=_h(rm)).json()["status"] == "permanent"
    r = httpx.post(f"{live_api.url}/api/v1/approvals/{r.json()['id']}/approve", headers=_h(admin), json={})
    assert r.status_code == 200, r.text
    r = httpx.get(f"{url}/retention", headers=_h(rm))
    assert r.json()["rule"] == "default" and not r.json()["storage_legal_hold"]
    assert r.json()["delete_after"] is not None and r.json()["storage_retain_until"] is not None
    with Session(engine) as s:
        acts = [e.action for e in s.exec(select(Event).where(Event.subject_id == m.id).order_by(Event.id))]
        denied = s.exec(select(Event).where(Event.outcome == Outcome.DENIED)).all()
    assert {"retention.flag", "retention.hold", "retention.release", "retention.unflag"} <= set(acts)
    assert len(denied) >= 1
    assert rev  # a reviewer exists but may not see unlinked media


def test_policy_versions_and_report(
    live_api: LiveAPI, make_user: Any, engine: Engine, store: MinioStore
) -> None:
    rm, auditor = make_user("rm1", "records-manager"), make_user("aud", "auditor")
    pol = httpx.get(f"{live_api.url}/api/v1/retention/policy", headers=_h(auditor)).json()
    assert pol["default_months"] == 6 and pol["version"] == 1
    bad = httpx.put(
        f"{live_api.url}/api/v1/retention/policy",
        headers=_h(rm),
        json={"policy": {**pol, "default_months": 0}, "reason": "test"},
    )
    assert bad.status_code == 422 and "default_months" in bad.json()["detail"]
    assert (
        httpx.put(
            f"{live_api.url}/api/v1/retention/policy",
            headers=_h(auditor),
            json={"policy": pol, "reason": "x" * 5},
        ).status_code
        == 403
    )
    ok = httpx.put(
        f"{live_api.url}/api/v1/retention/policy",
        headers=_h(rm),
        json={"policy": {**pol, "default_months": 12}, "reason": "agency keeps a year"},
    )
    assert ok.status_code == 202 and ok.json()["payload"]["replaces_version"] == 1, ok.text
    admin = make_user("adm", "admin")
    r = httpx.post(f"{live_api.url}/api/v1/approvals/{ok.json()['id']}/approve", headers=_h(admin), json={})
    assert r.status_code == 200 and r.json()["result"] == {"version": 2}, r.text
    assert httpx.get(f"{live_api.url}/api/v1/retention/policy", headers=_h(auditor)).json()["version"] == 2

    from retention import services as rs

    now = datetime.now(UTC)
    soon = archived(engine, store, now - timedelta(days=360))  # 12 months from then: in ~5 days
    archived(engine, store, now - timedelta(days=100))
    rs.classify_pending(engine, store)
    rep = httpx.get(f"{live_api.url}/api/v1/retention/report", headers=_h(rm)).json()
    assert [i["media_id"] for i in rep["items"]] == [soon.id]


def test_cli_sweep_dry_run_and_report(env: dict[str, str], engine: Engine, store: MinioStore) -> None:
    old = archived(engine, store, datetime.now(UTC) - timedelta(days=300))
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "sweep", "--dry-run", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    data = json.loads(out.stdout)
    assert data["dry_run"] and [e["media_id"] for e in data["deleted"]] == [old.id]
    assert store.exists(store.originals, old.object_key)
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "sweep"], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert f"deleted  {old.id}" in out.stdout and "1 deleted" in out.stdout
    assert not store.exists(store.originals, old.object_key)
    pol = subprocess.run(
        [sys.executable, "-m", "cli.main", "retention", "policy"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert json.loads(pol.stdout) == default_policy().to_json()

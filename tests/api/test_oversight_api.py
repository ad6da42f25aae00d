"""Oversight through the real API and the CLI: the early-warning run, its statistics per unit and
officer, access oversight from the custody log, bad queries refused, and each role."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.db import session_scope
from archive.media.models import Media
from tests.archive.workdays.test_provisional import stand_in_years
from tests.case_factories import T, auth, media_row, new_case, record_body
from tests.conftest import ROOT, LiveAPI

M = timedelta(minutes=1)


def _setup(url: str, engine: Engine, clerk: str) -> dict[str, Any]:
    media_row(engine, recorded_at=T, duration_s=4 * 60)  # covers 10:00-10:04 of a 10-minute questioning
    stray = media_row(engine, officer="0816", device="BC-9", recorded_at=T - timedelta(days=30))
    with session_scope(engine) as s:
        row = s.get(Media, stray)
        assert row is not None
        row.received_at = datetime.now(UTC) - timedelta(days=20)
    case = new_case(url, clerk, number="O-1", agency="county-traffic")
    cid = case["id"]
    ids = []
    for start, end, officers in [
        (T, T + 10 * M, ["0815"]),
        (T + 60 * M, T + 70 * M, ["0815"]),
        (T + 2 * 60 * M, T + 2 * 60 * M + M, ["0815"]),
    ]:
        r = httpx.post(
            f"{url}/api/v1/cases/{cid}/records", json=record_body(start, end, officers), headers=auth(clerk)
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["record"]["record_id"])
    for rid, act in zip(ids[:2], ["questioning-suspect", "hearing"], strict=True):
        r = httpx.put(
            f"{url}/api/v1/cases/{cid}/records/{rid}/activity", json={"activity": act}, headers=auth(clerk)
        )
        assert r.status_code == 200
    return {"case": cid, "records": ids, "stray": stray}


def test_warnings_and_statistics(live_api: LiveAPI, make_user: Any, engine: Engine) -> None:
    url = live_api.url
    clerk = make_user("clerk", "records-manager")
    aud = make_user("aud", "auditor")
    made = _setup(url, engine, clerk)
    stand_in_years(engine, "clerk")  # no calendar warning, whatever day this runs
    empty = httpx.get(f"{url}/api/v1/oversight/warnings", headers=auth(aud)).json()
    assert empty["run_id"] is None and empty["items"] == []
    r = httpx.post(f"{url}/api/v1/oversight/warnings/run", headers=auth(aud))
    assert r.status_code == 201, r.text
    body = httpx.get(f"{url}/api/v1/oversight/warnings", headers=auth(aud)).json()
    assert body["counts"] == {
        "missing-recording": 1,
        "gaps": 1,
        "unlinked-recording": 1,
        "officer-without-certificate": 0,
        "record-without-activity": 1,
        "calendar-year-missing": 0,
        "provisional-deadline": 0,
    }
    kinds = {(w["kind"], w["subject_id"]) for w in body["items"]}
    gaps_rid, missing_rid, bare_rid = made["records"]
    assert kinds == {
        ("gaps", gaps_rid),
        ("missing-recording", missing_rid),
        ("record-without-activity", bare_rid),
        ("unlinked-recording", made["stray"]),
    }
    gap = next(w for w in body["items"] if w["kind"] == "gaps")
    assert (
        gap["agency"] == "county-traffic" and gap["officer"] == "0815" and gap["label_zh"] == "音像记录有间断"
    )
    assert gap["details"]["gaps"][0][0].startswith((T + 4 * M).isoformat()[:19])
    stats = {(s["agency"], s["officer"]): s for s in body["stats"]}
    mine = stats[("county-traffic", "0815")]
    assert (mine["records"], mine["required"], mine["gaps"], mine["missing"], mine["covered"]) == (
        3,
        2,
        1,
        1,
        0,
    )
    assert mine["coverage_rate"] == 0.0 and mine["recordings"] == 1
    assert mine["recordings_per_activity"] == {"questioning-suspect": 1}
    only = httpx.get(
        f"{url}/api/v1/oversight/warnings", params={"kind": "gaps", "officer": "0815"}, headers=auth(aud)
    ).json()
    assert [w["kind"] for w in only["items"]] == ["gaps"] and only["total"] == 1
    assert (
        httpx.get(f"{url}/api/v1/oversight/warnings", params={"kind": "bogus"}, headers=auth(aud)).status_code
        == 422
    )
    # The same through the CLI (runs the check itself, reads the database).
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "oversight", "--json"],
        env={**os.environ, **live_api.env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["counts"]["gaps"] == 1 and out["run_id"] == body["run_id"] + 1


def test_access_oversight_and_roles(live_api: LiveAPI, make_user: Any, engine: Engine) -> None:
    url = live_api.url
    tokens = {
        "clerk": make_user("clerk", "records-manager"),
        "admin": make_user("root", "admin"),
        "auditor": make_user("aud", "auditor"),
        "reviewer": make_user("rev1", "reviewer"),
        "officer": make_user("0815", "officer"),
    }
    case = new_case(url, tokens["clerk"], number="O-2", reviewers=["rev1"])
    cid = case["id"]
    assert httpx.get(f"{url}/api/v1/cases/{cid}", headers=auth(tokens["reviewer"])).status_code == 200
    assert (
        httpx.get(f"{url}/api/v1/cases/{cid}/timeline", headers=auth(tokens["reviewer"])).status_code == 200
    )
    assert httpx.get(f"{url}/api/v1/cases/{cid}/coverage", headers=auth(tokens["clerk"])).status_code == 200
    r = httpx.get(f"{url}/api/v1/oversight/access", params={"case_id": cid}, headers=auth(tokens["auditor"]))
    assert r.status_code == 200, r.text
    seen = {(e["actor"], e["action"]) for e in r.json()["items"]}
    assert {
        ("user:rev1", "case.view"),
        ("user:rev1", "case.timeline"),
        ("user:clerk", "case.coverage"),
    } <= seen
    assert all(e["client_addr"] == "127.0.0.1" for e in r.json()["items"])
    r = httpx.get(
        f"{url}/api/v1/oversight/access",
        params={"case_id": cid, "actor": "rev1"},
        headers=auth(tokens["auditor"]),
    )
    assert {e["actor"] for e in r.json()["items"]} == {"user:rev1"} and r.json()["total"] == 2
    for bad in (
        {"action": "case.create"},
        {"since": "2024-06-10T12:00:00Z", "until": "2024-06-10T11:00:00Z"},
        {"subject_id": cid},
        {"subject_type": "galaxy"},
        {"limit": 0},
    ):
        r = httpx.get(f"{url}/api/v1/oversight/access", params=bad, headers=auth(tokens["auditor"]))
        assert r.status_code == 422, (bad, r.text)
    expect = {"auditor": 200, "admin": 200, "clerk": 403, "reviewer": 403, "officer": 403}
    for who, code in expect.items():
        for path in ("/api/v1/oversight/access", "/api/v1/oversight/warnings"):
            assert httpx.get(f"{url}{path}", headers=auth(tokens[who])).status_code == code, (who, path)
        r = httpx.post(f"{url}/api/v1/oversight/warnings/run", headers=auth(tokens[who]))
        assert r.status_code == (201 if code == 200 else code), who
    assert httpx.get(f"{url}/api/v1/oversight/warnings").status_code == 401
    with Session(engine) as s:
        from archive.models import Event

        assert s.exec(select(Event).where(Event.action == "oversight.access")).first() is not None


def test_access_to_one_record_and_one_recording(live_api: LiveAPI, make_user: Any, engine: Engine) -> None:
    """Who read this record, who viewed this recording: the access query by subject answers it, with
    the reader's address, for reads through the item's own route (issue 13, item 7)."""
    url = live_api.url
    clerk = make_user("clerk", "records-manager")
    rev = make_user("rev1", "reviewer")
    aud = make_user("aud", "auditor")
    media = media_row(engine, recorded_at=T)
    case = new_case(url, clerk, number="O-3", reviewers=["rev1"])
    cid = case["id"]
    r = httpx.post(
        f"{url}/api/v1/cases/{cid}/records",
        json=record_body(T, T + timedelta(minutes=5), []),
        headers=auth(clerk),
    )
    rid = r.json()["record"]["record_id"]
    other = httpx.post(
        f"{url}/api/v1/cases/{cid}/records",
        json=record_body(T, T + timedelta(minutes=5), []),
        headers=auth(clerk),
    ).json()["record"]["record_id"]
    assert httpx.get(f"{url}/api/v1/cases/{cid}/records/{rid}", headers=auth(rev)).status_code == 200
    assert httpx.get(f"{url}/api/v1/cases/{cid}/records/{other}", headers=auth(clerk)).status_code == 200
    assert httpx.get(f"{url}/api/v1/media/{media}", headers=auth(clerk)).status_code == 200
    access = f"{url}/api/v1/oversight/access"
    r = httpx.get(access, params={"subject_type": "record", "subject_id": rid}, headers=auth(aud))
    assert r.status_code == 200, r.text
    assert [(e["actor"], e["action"], e["case_id"], e["client_addr"]) for e in r.json()["items"]] == [
        ("user:rev1", "case.records", cid, "127.0.0.1")
    ]
    r = httpx.get(access, params={"subject_type": "media", "subject_id": media}, headers=auth(aud))
    assert [(e["actor"], e["action"]) for e in r.json()["items"]] == [("user:clerk", "media.view")]

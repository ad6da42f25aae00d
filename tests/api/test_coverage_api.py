"""Coverage of records through the real API: the five statuses, the recording-item list's versions,
bad input refused with nothing changed, and every route for each role that may and may not use it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from archive.coverage.models import ItemListVersion, RecordActivity
from archive.models import Event
from tests.case_factories import T, auth, media_row, new_case, record_body
from tests.conftest import LiveAPI

M = timedelta(minutes=1)


def _record(url: str, token: str, case_id: str, start: Any, end: Any, officers: list[str], title: str) -> str:
    r = httpx.post(
        f"{url}/api/v1/cases/{case_id}/records",
        json=record_body(start, end, officers, title=title),
        headers=auth(token),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["record"]["record_id"])


def _activity(
    url: str, token: str, case_id: str, rid: str, activity: str, reason: str = ""
) -> httpx.Response:
    return httpx.put(
        f"{url}/api/v1/cases/{case_id}/records/{rid}/activity",
        json={"activity": activity, "no_recording_reason": reason},
        headers=auth(token),
    )


def _count(engine: Engine, model: Any) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def test_coverage_statuses_and_gaps_on_the_corrected_clock(
    live_api: LiveAPI, make_user: Any, engine: Engine
) -> None:
    url = live_api.url
    clerk = make_user("clerk", "records-manager")
    rev = make_user("rev1", "reviewer")
    approver2 = make_user("clerk2", "records-manager")
    # Questioning, fully recorded (the recording runs a minute either side).
    full = media_row(engine, recorded_at=T - M, duration_s=12 * 60)
    # Inspection, two recordings leave 5 minutes uncovered; the first device's clock is 2 min fast.
    part1 = media_row(engine, device="BC-2", recorded_at=T + 20 * M + 2 * M, offset_s=120, duration_s=5 * 60)
    part2 = media_row(engine, device="BC-2", recorded_at=T + 30 * M, duration_s=10 * 60)
    photo = media_row(engine, recorded_at=T + 3 * 60 * M, duration_s=0.0, kind="image")
    case = new_case(url, clerk, number="COV-1", reviewers=["rev1"])
    cid = case["id"]
    r_full = _record(url, clerk, cid, T, T + 10 * M, ["0815"], "询问笔录")
    r_gaps = _record(url, clerk, cid, T + 20 * M, T + 40 * M, ["0815"], "现场检查笔录")
    r_missing = _record(url, clerk, cid, T + 3 * 60 * M, T + 4 * 60 * M, ["0815"], "听证笔录")
    r_reason = _record(url, clerk, cid, T + 48 * 60 * M, T + 49 * 60 * M, ["0815"], "送达回证")
    r_text = _record(url, clerk, cid, T + 72 * 60 * M, T + 72 * 60 * M, [], "处罚决定书")
    r_none = _record(url, clerk, cid, T + 96 * 60 * M, T + 97 * 60 * M, [], "报告")
    for rid, act, reason in [
        (r_full, "questioning-suspect", ""),
        (r_gaps, "on-site-inspection", ""),
        (r_missing, "hearing", ""),
        (r_reason, "service-of-documents", "当事人拒绝录像, 文字记录已全面记录送达过程"),
        (r_text, "decision", ""),
    ]:
        r = _activity(url, rev, cid, rid, act, reason)
        assert r.status_code == 200, r.text
        assert r.json()["item_list_version"] == 1
    r = httpx.get(f"{url}/api/v1/cases/{cid}/coverage", headers=auth(rev))
    assert r.status_code == 200, r.text
    body = r.json()
    by_id = {x["record_id"]: x for x in body["records"]}
    assert by_id[r_full]["status"] == "covered" and by_id[r_full]["gaps"] == []
    assert by_id[r_full]["recordings"] == [full]
    assert by_id[r_full]["mode"] == "whole-process" and by_id[r_full]["activity_zh"] == "询问违法嫌疑人"
    gaps = by_id[r_gaps]
    assert gaps["status"] == "gaps" and gaps["status_zh"] == "有间断"
    # part1 is corrected back to T+20..T+25; part2 covers T+30..T+40: one gap of 5 minutes.
    assert [(g["start"], g["end"], g["seconds"]) for g in gaps["gaps"]] == [
        (
            (T + 25 * M).isoformat().replace("+00:00", "Z"),
            (T + 30 * M).isoformat().replace("+00:00", "Z"),
            300.0,
        )
    ]
    assert sorted(gaps["recordings"]) == sorted([part1, part2])
    assert by_id[r_missing]["status"] == "missing"  # a photo is not a recording
    assert photo not in by_id[r_missing]["recordings"]
    assert by_id[r_reason]["status"] == "missing-with-reason"
    assert by_id[r_reason]["reason"].startswith("当事人拒绝录像")
    assert by_id[r_text]["status"] == "not-required"
    assert by_id[r_none]["status"] == "not-required" and by_id[r_none]["activity"] is None
    assert body["counts"] == {
        "covered": 1,
        "gaps": 1,
        "missing": 1,
        "not-required": 2,
        "missing-with-reason": 1,
    }
    # The timeline carries the same coverage on each record when asked.
    tl = httpx.get(
        f"{url}/api/v1/cases/{cid}/timeline", params={"coverage": "true"}, headers=auth(rev)
    ).json()
    on_timeline = {x["record_id"]: x["coverage"] for x in tl["items"] if x["type"] == "record"}
    assert {k: v["status"] for k, v in on_timeline.items()} == {k: v["status"] for k, v in by_id.items()}
    assert on_timeline[r_gaps]["gaps"] == gaps["gaps"] and on_timeline[r_gaps]["status_zh"] == "有间断"
    plain = httpx.get(f"{url}/api/v1/cases/{cid}/timeline", headers=auth(rev)).json()
    assert all(x.get("coverage") is None for x in plain["items"])
    # Unlinking a recording (a human decision) changes coverage: the questioning is now missing.
    r = httpx.post(
        f"{url}/api/v1/cases/{cid}/media/{full}/unlink",
        json={"reason": "wrong incident"},
        headers=auth(clerk),
    )
    assert r.status_code == 202, r.text  # a second person approves (issue 10, finding 4)
    r = httpx.post(f"{url}/api/v1/approvals/{r.json()['id']}/approve", json={}, headers=auth(approver2))
    assert r.status_code == 200, r.text
    after = httpx.get(f"{url}/api/v1/cases/{cid}/coverage", headers=auth(clerk)).json()
    assert {x["record_id"]: x["status"] for x in after["records"]}[r_full] == "missing"
    with Session(engine) as s:
        actions = [
            e.action for e in s.exec(select(Event).where(col(Event.action).startswith("record.activity")))
        ]
        assert len(actions) == 5
        assert s.exec(select(Event).where(Event.action == "case.coverage")).first() is not None


def test_item_list_versions_change_coverage_and_are_logged(
    live_api: LiveAPI, make_user: Any, engine: Engine
) -> None:
    url = live_api.url
    clerk = make_user("clerk", "records-manager")
    case = new_case(url, clerk, number="COV-2")
    rid = _record(url, clerk, case["id"], T, T + 10 * M, [], "抽查记录")
    assert _activity(url, clerk, case["id"], rid, "random-inspection").status_code == 200
    cov = httpx.get(f"{url}/api/v1/cases/{case['id']}/coverage", headers=auth(clerk)).json()
    assert cov["records"][0]["status"] == "missing" and cov["item_list_version"] == 1
    current = httpx.get(f"{url}/api/v1/recording-items", headers=auth(clerk)).json()
    for a in current["activities"]:
        if a["key"] == "random-inspection":
            a["mode"], a["text_exception"] = "text", False
    r = httpx.put(
        f"{url}/api/v1/recording-items",
        json={"body": current, "reason": "本局抽查以文字记录为主 (局务会 2024-05)"},
        headers=auth(clerk),
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    cov = httpx.get(f"{url}/api/v1/cases/{case['id']}/coverage", headers=auth(clerk)).json()
    assert cov["records"][0]["status"] == "not-required" and cov["item_list_version"] == 2
    versions = httpx.get(f"{url}/api/v1/recording-items/versions", headers=auth(clerk)).json()
    assert [(v["version"], v["created_by"]) for v in versions] == [(1, "system:default"), (2, "user:clerk")]
    assert versions[1]["reason"].startswith("本局抽查")
    with Session(engine) as s:
        ev = s.exec(select(Event).where(Event.action == "recording.list.set")).one()
        assert ev.details["previous_version"] == 1


def test_bad_input_is_refused_and_changes_nothing(live_api: LiveAPI, make_user: Any, engine: Engine) -> None:
    url = live_api.url
    clerk = make_user("clerk", "records-manager")
    case = new_case(url, clerk, number="COV-3")
    rid = _record(url, clerk, case["id"], T, T + 10 * M, [], "笔录")
    before = (_count(engine, RecordActivity), _count(engine, ItemListVersion), _count(engine, Event))

    def same() -> None:
        # Refusals of authenticated callers that are not 403/404 leave no row at all.
        assert (
            _count(engine, RecordActivity),
            _count(engine, ItemListVersion),
            _count(engine, Event),
        ) == before

    r = _activity(url, clerk, case["id"], rid, "karaoke")
    assert r.status_code == 422 and "unknown activity" in r.json()["detail"]
    same()
    r = _activity(url, clerk, case["id"], rid, "questioning-suspect", "camera broken")
    assert r.status_code == 422 and "does not allow" in r.json()["detail"]
    same()
    r = _activity(url, clerk, case["id"], rid, "", "")
    assert r.status_code == 422
    same()
    items = httpx.get(f"{url}/api/v1/recording-items", headers=auth(clerk)).json()
    r = httpx.put(f"{url}/api/v1/recording-items", json={"body": items, "reason": "  "}, headers=auth(clerk))
    assert r.status_code == 422 and "reason" in r.json()["detail"]
    same()
    broken = {**items, "activities": items["activities"] + items["activities"][:1]}
    r = httpx.put(
        f"{url}/api/v1/recording-items", json={"body": broken, "reason": "dup"}, headers=auth(clerk)
    )
    assert r.status_code == 422 and "twice" in r.json()["detail"]
    same()
    # A window that ends before it starts: refused, no record stored.
    bad = record_body(T + 10 * M, T, [])
    r = httpx.post(f"{url}/api/v1/cases/{case['id']}/records", json=bad, headers=auth(clerk))
    assert 400 <= r.status_code < 500 and "before" in r.json()["detail"]
    same()
    r = _activity(url, clerk, case["id"], "no-such-record", "hearing")
    assert r.status_code == 404


def test_each_route_for_each_role(live_api: LiveAPI, make_user: Any) -> None:
    url = live_api.url
    tokens = {
        "clerk": make_user("clerk", "records-manager"),
        "admin": make_user("root", "admin"),
        "auditor": make_user("aud", "auditor"),
        "assigned": make_user("rev1", "reviewer"),
        "other": make_user("rev2", "reviewer"),
        "officer": make_user("0815", "officer"),
    }
    case = new_case(url, tokens["clerk"], number="COV-4", reviewers=["rev1"])
    rid = _record(url, tokens["clerk"], case["id"], T, T + M, [], "x")
    cov = f"{url}/api/v1/cases/{case['id']}/coverage"
    expect_cov = {"clerk": 200, "admin": 200, "auditor": 200, "assigned": 200, "other": 404, "officer": 404}
    for who, code in expect_cov.items():
        assert httpx.get(cov, headers=auth(tokens[who])).status_code == code, who
    expect_act = {"clerk": 200, "admin": 200, "assigned": 200, "auditor": 403, "other": 404, "officer": 404}
    for who, code in expect_act.items():
        assert _activity(url, tokens[who], case["id"], rid, "hearing").status_code == code, who
    for who in tokens:
        assert httpx.get(f"{url}/api/v1/recording-items", headers=auth(tokens[who])).status_code == 200, who
    items = httpx.get(f"{url}/api/v1/recording-items", headers=auth(tokens["clerk"])).json()
    expect_set = {"clerk": 200, "admin": 200, "auditor": 403, "assigned": 403, "other": 403, "officer": 403}
    for who, code in expect_set.items():
        r = httpx.put(
            f"{url}/api/v1/recording-items",
            json={"body": items, "reason": f"by {who}"},
            headers=auth(tokens[who]),
        )
        assert r.status_code == code, (who, r.text)
    assert httpx.get(cov).status_code == 401

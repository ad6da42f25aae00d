"""Restricted items on the review page in a real browser (Debian's Chromium, headless, Playwright): a
user who holds a grant is asked for a purpose and then sees the marked record on the page's timeline,
the reading logged with that purpose (via the page); a user without a grant is never asked and never
sees it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.models import Event
from tests.browser import NEEDS_CHROMIUM
from tests.case_factories import T, auth, media_row, new_case, record_body
from tests.conftest import LiveAPI

pytest.importorskip("playwright.sync_api")
M = timedelta(minutes=1)

pytestmark = [
    pytest.mark.e2e,
    NEEDS_CHROMIUM,
]


def test_grantee_states_a_purpose_on_the_review_page(
    live_api: LiveAPI, make_user: Any, engine: Engine, browser: Any
) -> None:
    url = live_api.url
    clerk = make_user("clerk", "records-manager")
    granted = make_user("rev1", "reviewer")
    plain = make_user("rev2", "reviewer")
    media_row(engine, recorded_at=T, duration_s=4 * 60)
    case = new_case(url, clerk, number="PAGE-RES", reviewers=["rev1", "rev2"])
    cid = case["id"]
    recs = f"{url}/api/v1/cases/{cid}/records"
    ids = []
    for title in ("举报人证言", "现场笔录"):
        r = httpx.post(recs, json=record_body(T, T + 5 * M, [], title=title), headers=auth(clerk))
        ids.append(r.json()["record"]["record_id"])
    secret, visible = ids
    mark = {"subject_kind": "record", "subject_id": secret, "sensitivity": "privacy", "reason": "举报人"}
    assert httpx.post(f"{url}/api/v1/restricted/marks", json=mark, headers=auth(clerk)).status_code == 201
    grant = {"user_name": "rev1", "subject_kind": "record", "subject_id": secret, "reason": "承办人"}
    assert httpx.post(f"{url}/api/v1/restricted/grants", json=grant, headers=auth(clerk)).status_code == 201
    errors: list[str] = []
    # Without a grant: no question, no marked record.
    page = browser.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/cases/{cid}#token={plain}")
    page.wait_for_selector("body[data-ready='1']")
    assert page.is_hidden("#purpose-form")
    assert page.query_selector(f"li[data-record-id='{visible}']") is not None
    assert page.query_selector(f"li[data-record-id='{secret}']") is None
    # With a grant: asked for a purpose; the marked record appears once it is stated.
    page = browser.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/cases/{cid}#token={granted}")
    page.wait_for_selector("body[data-ready='1']")
    assert page.is_visible("#purpose-form") and page.is_hidden("#purpose-shown")
    assert page.query_selector(f"li[data-record-id='{secret}']") is None
    page.fill("#purpose", "审查起诉: 核对举报人证言")
    page.click("#purpose-form button[type='submit']")
    page.wait_for_selector(f"li[data-record-id='{secret}']")
    page.wait_for_selector("body[data-ready='1']")
    assert page.is_visible("#purpose-shown") and page.input_value("#purpose") == "审查起诉: 核对举报人证言"
    assert "举报人证言" in page.inner_text(f"li[data-record-id='{secret}']")
    with Session(engine) as s:
        reads = [
            (e.actor, e.details["purpose"], e.details["via"])
            for e in s.exec(
                select(Event).where(Event.action == "restricted.read", Event.subject_id == secret)
            )
        ]
    assert ("user:rev1", "审查起诉: 核对举报人证言", "timeline-page") in reads
    assert {a for a, _p, _v in reads} == {"user:rev1"}
    assert errors == []

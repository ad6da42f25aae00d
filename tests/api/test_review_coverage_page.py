"""Coverage on the review page in a real browser (Debian's Chromium, headless, Playwright): each record
carries its status, gaps are drawn on the case clock, and who signed what is shown."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests.browser import NEEDS_CHROMIUM
from tests.case_factories import T, auth, media_row, new_case, record_body
from tests.conftest import ROOT, LiveAPI

pytest.importorskip("playwright.sync_api")
M = timedelta(minutes=1)

pytestmark = [
    pytest.mark.e2e,
    NEEDS_CHROMIUM,
]


def test_review_page_draws_gaps_on_the_case_clock(
    live_api: LiveAPI, make_user: Any, engine: Engine, browser: Any
) -> None:
    url = live_api.url
    clerk = make_user("clerk", "records-manager")
    rev = make_user("rev1", "reviewer")
    media_row(engine, recorded_at=T, duration_s=4 * 60)
    media_row(engine, device="BC-2", recorded_at=T + 7 * M, duration_s=3 * 60)
    case = new_case(url, clerk, number="PAGE-COV", reviewers=["rev1"])
    cid = case["id"]
    recs = f"{url}/api/v1/cases/{cid}/records"
    gapped = httpx.post(recs, json=record_body(T, T + 10 * M, ["0815"], title="询问"), headers=auth(clerk))
    missing = httpx.post(
        recs, json=record_body(T + 60 * M, T + 70 * M, [], title="听证"), headers=auth(clerk)
    )
    g_id, m_id = gapped.json()["record"]["record_id"], missing.json()["record"]["record_id"]
    for rid, act in ((g_id, "questioning-suspect"), (m_id, "hearing")):
        r = httpx.put(f"{recs}/{rid}/activity", json={"activity": act}, headers=auth(clerk))
        assert r.status_code == 200
    # A Chinese reader's browser: the coverage words in Chinese, times on the agency's clock.
    page = browser.new_context(locale="zh-CN").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/cases/{cid}#token={rev}")
    page.wait_for_selector("body[data-ready='1']")
    assert page.is_visible("#coverage")
    gaps = page.query_selector_all("#coverage-bar .gap")
    # One gap inside the questioning (10:04-10:07) and the whole hearing window.
    assert sorted(g.get_attribute("data-record-id") for g in gaps) == sorted([g_id, m_id])
    first = next(g for g in gaps if g.get_attribute("data-record-id") == g_id)
    assert "（180 秒）" in (first.get_attribute("title") or "") and "北京时间" in (
        first.get_attribute("title") or ""
    )
    box = first.bounding_box()
    bar = page.query_selector("#coverage-bar").bounding_box()
    assert box is not None and bar is not None and box["x"] > bar["x"] and box["width"] > 0
    li = page.inner_text(f"li[data-record-id='{g_id}']")
    assert "有间断" in li and "间断：" in li and "签名：档案系统（第 1 版）" in li
    assert "缺少音像记录" in page.inner_text(f"li[data-record-id='{m_id}']")
    counts = page.inner_text("#coverage-counts")
    assert "缺少音像记录 1" in counts and "事项清单第" in counts and "missing" not in counts
    page.screenshot(path=str(ROOT / "tests" / "artifacts" / "review_coverage.png"), full_page=True)
    assert errors == []

    # An English reader's browser: the same in English.
    en = browser.new_context(locale="en-US").new_page()
    en.goto(f"{url}/cases/{cid}#token={rev}")
    en.wait_for_selector("body[data-ready='1']")
    li = en.inner_text(f"li[data-record-id='{g_id}']")
    assert "gaps: " in li and "signed by the archive (v1)" in li and "有间断" not in li
    assert "(180 s)" in (en.get_attribute(f"#coverage-bar .gap[data-record-id='{g_id}']", "title") or "")
    assert "missing 1" in en.inner_text("#coverage-counts")

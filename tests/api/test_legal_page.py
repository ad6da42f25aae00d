"""The case review page shows the legal review (status, checklist, opinion, deadline, overdue badge),
everything escaped, in Debian's Chromium driven by Playwright against the real API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from archive.db import session_scope
from archive.legal import services as legal
from tests.api.test_legal_api import fill_future_years
from tests.archive.legal.legal_factories import POINTS, World, clock, make_case, make_users, submit
from tests.conftest import ROOT, LiveAPI

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
SCRIPT = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (deploy/install.sh)"),
]


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def open_page(browser: Any, url: str, case_id: str, token: str, locale: str = "zh-CN") -> Any:
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 900}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/cases/{case_id}#token={token}")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    page.errors = errors
    return page


def test_review_page_shows_the_legal_review(live_api: LiveAPI, engine: Engine, browser: Any) -> None:
    users, tokens = make_users(engine)
    fill_future_years(engine, users)
    case_id, report, document, media = make_case(engine, users)
    w = World(engine, users, tokens, case_id, report, document, media)
    # Submitted on 2 November 2026: due 9 November, overdue whenever this test runs.
    sub = submit(w, at=datetime(2026, 11, 2, 2, 0, tzinfo=UTC), facts="Facts " + SCRIPT)
    with session_scope(engine) as s:
        for p in POINTS[:3]:
            legal.answer(s, users["lr1"], sub.id, p, "pass", clock=clock())
        legal.answer(s, users["lr1"], sub.id, "clear-facts", "fail", "Note " + SCRIPT, clock=clock())

    # A Chinese reader: the panel in Chinese only (no English beside it), times in Beijing time.
    page = open_page(browser, live_api.url, case_id, tokens["lr1"])
    panel = page.locator("#legal-review")
    assert panel.is_visible() and panel.get_attribute("data-status") == "pending"
    assert page.locator("#legal-status").inner_text() == "审核中"
    assert page.locator("#legal-overdue").inner_text().startswith("超期")
    assert page.locator("#legal-due").inner_text().startswith("审核期限：2026-11-09")
    rule = page.locator("#legal-rule").inner_text()
    assert rule.startswith("需法制审核：目录清单第 1 版") and "administrative-penalty" in rule
    assert "凡涉及行政处罚的都要进行法制审核" in rule
    rows = page.locator("#legal-checklist tr.point")
    assert rows.count() == 10
    facts = page.locator("tr.point[data-point='clear-facts']").inner_text()
    assert "案件事实是否清楚" in facts and "不符合" in facts and SCRIPT in facts and "北京时间" in facts
    assert "fail" not in facts and "Facts clear" not in facts
    submission = page.locator("#legal-submission").inner_text()
    assert SCRIPT in submission and "拟作出的决定（第 1 版）：罚款" in submission
    assert "2026-11-02 10:00:00 北京时间 报送" in submission and "罚款 2000 元" in submission
    assert page.evaluate("window.__pwned") is None and page.errors == []
    for english in ("Overdue", "Review required", "Proposed decision", "working days)"):
        assert english not in panel.inner_text()
    artifacts = ROOT / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    page.screenshot(path=str(artifacts / "legal_review_page.png"), full_page=True)

    with session_scope(engine) as s:
        legal.decide(
            s, users["lr1"], sub.id, legal.OpinionInput("return", "Reasons " + SCRIPT, True), clock=clock()
        )
    page = open_page(browser, live_api.url, case_id, tokens["clerk"])
    assert page.locator("#legal-review").get_attribute("data-status") == "returned"
    opinion = page.locator("#legal-opinion").inner_text()
    assert opinion.startswith("审核意见：退回补充材料——") and SCRIPT in opinion
    assert "I answer for this review opinion" in opinion and "北京时间" in opinion
    assert page.locator("#legal-overdue").is_hidden()  # decided: no longer running
    assert page.evaluate("window.__pwned") is None and page.errors == []

    # An English reader: the same panel in English.
    page = open_page(browser, live_api.url, case_id, tokens["clerk"], "en-US")
    assert page.locator("#legal-status").inner_text() == "Returned for more material"
    assert page.locator("#legal-rule").inner_text().startswith("Legal review required: catalogue v1, rule")
    assert "Proposed decision v1: Fine" in page.locator("#legal-submission").inner_text()
    assert "CST (UTC+08:00)" in page.locator("#legal-submission").inner_text()
    facts = page.locator("tr.point[data-point='clear-facts']").inner_text()
    assert "Facts clear" in facts and "fail" in facts and "案件事实是否清楚" not in facts
    assert page.locator("#legal-opinion").inner_text().startswith("Opinion: Return for more material - ")
    assert page.errors == []

    # The handling side reads it too; the page CSP stays strict.
    page = open_page(browser, live_api.url, case_id, tokens["rev1"])
    assert page.locator("#legal-review").get_attribute("data-status") == "returned"

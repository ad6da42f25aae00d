"""The case page never shows a provisional review deadline as final: next to the due date it says the
year's holiday arrangement is not loaded (in the reader's language), with the Monday-Friday count and,
as the title, how the date was counted. Debian's Chromium, driven by Playwright, against the real API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from tests.api.test_legal_page import open_page
from tests.archive.legal.legal_factories import World, make_case, make_users, submit
from tests.browser import NEEDS_CHROMIUM
from tests.conftest import LiveAPI

pytestmark = [pytest.mark.e2e, NEEDS_CHROMIUM]


def test_the_page_says_the_due_date_is_provisional(live_api: LiveAPI, engine: Engine, browser: Any) -> None:
    users, tokens = make_users(engine)
    case_id, report, document, media = make_case(engine, users)
    w = World(engine, users, tokens, case_id, report, document, media)
    # Submitted on Monday 28 December 2026 with 2027 not loaded: provisionally due Saturday 2 January.
    submit(w, at=datetime(2026, 12, 28, 2, 0, tzinfo=UTC))
    page = open_page(browser, live_api.url, case_id, tokens["lr1"])
    due = page.locator("#legal-due")
    text = due.inner_text()
    assert text.startswith("审核期限：2027-01-02"), text
    assert "暂定，2027 年节假日安排未载入" in text and "仅按周一至周五计算：2027-01-04" in text
    assert "2027 年的每一天均按工作日从严计算" in (due.get_attribute("title") or "")
    assert "provisional" in (due.get_attribute("class") or "") and page.errors == []
    english = open_page(browser, live_api.url, case_id, tokens["lr1"], locale="en-US")
    assert (
        "provisional: the 2027 holiday arrangement is not loaded"
        in english.locator("#legal-due").inner_text()
    )

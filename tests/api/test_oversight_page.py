"""The auditors' oversight page in a real browser (Debian's Chromium, headless, Playwright) against
the real API: warnings, statistics and the access log render; hostile text stays text."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests.api.test_oversight_api import _setup
from tests.browser import NEEDS_CHROMIUM
from tests.case_factories import T, auth, record_body
from tests.conftest import LiveAPI

pytest.importorskip("playwright.sync_api")
SCRIPT = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'

pytestmark = [
    pytest.mark.e2e,
    NEEDS_CHROMIUM,
]


def test_oversight_page_shows_warnings_statistics_and_access(
    live_api: LiveAPI, make_user: Any, engine: Engine, browser: Any
) -> None:
    url = live_api.url
    clerk = make_user("clerk", "records-manager")
    aud = make_user("aud", "auditor")
    rev = make_user("rev1", "reviewer")
    made = _setup(url, engine, clerk)
    cid = made["case"]
    httpx.put(f"{url}/api/v1/cases/{cid}/reviewers", json={"reviewers": ["rev1"]}, headers=auth(clerk))
    r = httpx.post(
        f"{url}/api/v1/cases/{cid}/records",
        json=record_body(T, T + timedelta(minutes=1), []),
        headers=auth(clerk),
    )
    rid = r.json()["record"]["record_id"]
    rm = f"{url}/api/v1/restricted"
    mark = {"subject_kind": "record", "subject_id": rid, "sensitivity": "privacy", "reason": "x"}
    assert httpx.post(f"{rm}/marks", json=mark, headers=auth(clerk)).status_code == 201
    grant = {"user_name": "rev1", "subject_kind": "record", "subject_id": rid, "reason": "承办人"}
    assert httpx.post(f"{rm}/grants", json=grant, headers=auth(clerk)).status_code == 201
    r = httpx.get(f"{rm}/cases/{cid}/records/{rid}", params={"purpose": SCRIPT}, headers=auth(rev))
    assert r.status_code == 200
    assert httpx.post(f"{url}/api/v1/oversight/warnings/run", headers=auth(aud)).status_code == 201
    page = browser.new_context(locale="zh-CN").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    resp = page.goto(f"{url}/oversight#token={aud}")
    assert resp is not None and "script-src 'self'" in resp.headers["content-security-policy"]
    page.wait_for_selector("#warnings tbody tr")
    text = page.inner_text("#warnings")
    assert "音像记录有间断" in text and "应录未录" in text and made["stray"] in text
    stats = page.inner_text("#stats")
    assert "county-traffic" in stats and "0815" in stats
    page.wait_for_selector("#access tbody tr")
    access = page.inner_text("#access")
    assert "restricted.read" in access and SCRIPT in access  # shown as text
    assert page.evaluate("window.__pwned") is None
    assert "#token" not in page.url
    # In Chinese only, times in Beijing time with the zone named.
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "执法全过程记录监督"
    assert "北京时间" in page.inner_text("#run-facts") and "北京时间" in access
    assert "Warnings" not in page.inner_text("main")
    assert errors == []

    # The auditor switches to English: saved as their own setting, the page reloads in English.
    page.locator("#languages a", has_text="English").click()
    page.wait_for_selector("html[lang='en'] #warnings tbody tr")
    page.wait_for_selector("#warnings tbody tr")
    assert page.locator("h1").inner_text() == "Recording oversight"
    assert "gaps in the recording" in page.inner_text("#warnings")
    assert "CST (UTC+08:00)" in page.inner_text("#run-facts")
    me = httpx.get(f"{url}/api/v1/me", headers=auth(aud)).json()
    assert me["language"] == "en"
    # ...and back to Chinese.
    page.locator("#languages a", has_text="简体中文").click()
    page.wait_for_selector("html[lang='zh-CN'] #warnings tbody tr")
    assert httpx.get(f"{url}/api/v1/me", headers=auth(aud)).json()["language"] == "zh-CN"
    assert errors == []

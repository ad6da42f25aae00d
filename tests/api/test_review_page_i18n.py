"""The review page in Debian's Chromium, as a Chinese and as an English reader opens it: served in the
reader's language (the user's own setting first, then the browser's), Beijing times with the zone
named, the procedure's Chinese names; across midnight at the end of a month.

Artefacts: tests/artifacts/review_page_zh.png and review_page_en.png (git-ignored).
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from archive.config import Settings
from archive.storage import MinioStore
from tests.api.test_review_page import _ready
from tests.browser import NEEDS_CHROMIUM
from tests.case_factories import auth, new_case, record_body
from tests.conftest import ROOT, LiveAPI
from tests.media_samples import make_samples

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
ARTIFACTS = ROOT / "tests" / "artifacts"
# 23:59:00 on 30 June in Beijing; the recording's device clock runs 30 s fast (it said 23:59:30).
START = datetime(2024, 6, 30, 15, 59, 0, tzinfo=UTC)

pytestmark = [
    pytest.mark.e2e,
    NEEDS_CHROMIUM,
]


def _open(browser: Any, url: str, token: str, locale: str) -> Any:
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Any failed request but the browser's own favicon guess (a data block blocked by the CSP would
    # show here too).
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}") if r.status >= 400 and "favicon" not in r.url else None
        ),
    )
    # (Chromium's console line for a failed load names no URL: the responses above are checked.)
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.goto(f"{url}#token={token}")
    # The page's strict CSP stays on (no bypass): waits below use selectors, never eval'd predicates.
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    page.errors = errors
    return page


def _text(page: Any, selector: str) -> str:
    return str(page.locator(selector).first.inner_text())


def test_review_page_in_chinese_and_in_english(
    live_api: LiveAPI,
    make_user: Any,
    engine: Engine,
    store: MinioStore,
    settings: Settings,
    tmp_path: Path,
    browser: Any,
) -> None:
    if shutil.which("fc-list"):  # deploy/install.sh: fonts-noto-cjk, so screenshots show characters
        fonts = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout
        assert "CJK SC" in fonts, "no Chinese font installed: run deploy/install.sh"
    clerk = make_user("clerk", "records-manager")
    reviewer = make_user("rev1", "reviewer")
    english_user = make_user("rev2", "reviewer")
    samples = make_samples(tmp_path / "media", seconds=2, size="320x180")
    video = _ready(engine, store, settings, samples["h264"], "0815", START + timedelta(seconds=30), 30.0)

    url = live_api.url
    case = new_case(
        url,
        clerk,
        number="2024-0630",
        reviewers=["rev1", "rev2"],
        title="路边检查",
        stage="evidence-collection",
    )
    records = f"{url}/api/v1/cases/{case['id']}/records"
    inquiry = record_body(
        START, START + timedelta(seconds=1), ["0815"], stage="evidence-collection", title="现场询问"
    )
    assert httpx.post(records, json=inquiry, headers=auth(clerk)).json()["linked_media"] == [video]
    report = record_body(
        START + timedelta(minutes=1, seconds=5),  # 00:00:05 on 1 July, local time
        START + timedelta(minutes=2),
        [],
        stage="review",  # (a decision-stage record needs an approved legal review: issue 12's gate)
        doc_kind="report",
        title="",
    )
    assert httpx.post(records, json=report, headers=auth(clerk)).status_code == 201
    assert httpx.put(
        f"{url}/api/v1/me/language", json={"language": "en"}, headers=auth(english_user)
    ).is_success
    page_url = f"{url}/cases/{case['id']}"

    # ------------------------------------------------------------------ a Chinese browser
    zh = _open(browser, page_url, reviewer, "zh-CN")
    assert zh.evaluate("document.documentElement.lang") == "zh-CN"
    assert zh.title() == "案件 2024-0630 - 执法音视频档案"
    assert _text(zh, "#case-title") == "案件 2024-0630：路边检查"
    assert _text(zh, "#case-facts") == "行政案件 · 阶段：取证 · 办理中 · 审查人员：rev1、rev2"
    assert "以下时间均为北京时间（UTC+08:00）" in _text(zh, "#clock-note")
    assert _text(zh, "#play") == "全部播放" and _text(zh, "#records-panel > h2") == "文字笔录"
    first, second = zh.locator(".record").all()
    assert (
        first.locator(".stage").inner_text() == "取证"
        and first.locator(".doc-kind").inner_text() == "询问笔录"
    )
    assert second.locator(".stage").inner_text() == "审查"
    assert second.locator(".doc-kind").inner_text() == "呈批报告书"
    assert "呈批报告书" in second.locator("h3").inner_text()  # untitled: named by its kind
    # Times on the agency's clock, named: the report is on 1 July, local time.
    assert first.locator(".when").inner_text() == (
        "2024-06-30 23:59:00 北京时间 → 2024-06-30 23:59:01 北京时间 · 第 1 版"
    )
    assert second.locator(".when").inner_text().startswith("2024-07-01 00:00:05 北京时间 → ")
    assert first.locator(".who").inner_text() == "制作人：0815 · 执法人员：0815"
    caption = _text(zh, f"figure[data-media-id='{video}'] figcaption")
    # The device said 23:59:30 and runs 30 s fast: the recording began at 23:59:00, Beijing time.
    assert (
        "执法人员 0815 · 设备" in caption
        and "2024-06-30 23:59:00 北京时间 → 2024-06-30 23:59:02 北京时间" in caption
    )
    assert _text(zh, "#now") == "2024-06-30 23:59:00 北京时间"
    second.click()
    expect(zh.locator("#now")).to_have_text("2024-07-01 00:00:05 北京时间")
    zh.locator("#play").click()
    expect(zh.locator("#play")).to_have_text("全部暂停")
    zh.locator("#play").click()
    ARTIFACTS.mkdir(exist_ok=True)
    zh.screenshot(path=str(ARTIFACTS / "review_page_zh.png"), full_page=True)
    assert zh.errors == []

    # ------------------------------------------------------------------ an English browser
    en = _open(browser, page_url, reviewer, "en-US")
    assert en.evaluate("document.documentElement.lang") == "en"
    assert _text(en, "#case-title") == "Case 2024-0630: 路边检查"
    assert _text(en, "#case-facts") == (
        "Administrative case · stage: Evidence collection · Open · reviewers: rev1, rev2"
    )
    assert "All times are CST (UTC+08:00), Asia/Shanghai" in _text(en, "#clock-note")
    first, second = en.locator(".record").all()
    assert first.locator(".stage").inner_text() == "Evidence collection"
    assert second.locator(".doc-kind").inner_text() == "Report for approval"
    assert first.locator(".when").inner_text() == (
        "2024-06-30 23:59:00 CST (UTC+08:00) → 2024-06-30 23:59:01 CST (UTC+08:00) · version 1"
    )
    assert "30 s fast (measured)" in _text(en, f"figure[data-media-id='{video}']")
    assert _text(en, "#play") == "Play all"
    en.screenshot(path=str(ARTIFACTS / "review_page_en.png"), full_page=True)
    assert en.errors == []

    # ------------------------------------------- the user's own setting beats the browser's
    own = _open(browser, page_url, english_user, "zh-CN")
    assert own.evaluate("document.documentElement.lang") == "en"  # reloaded once, served in English
    assert _text(own, "#play") == "Play all" and "Evidence collection" in _text(own, "#case-facts")
    assert own.errors == []
    # ...and on the next visit the cookie set with the session serves it in English at once.
    assert '<html lang="en">' in own.context.request.get(page_url).text()

    # ------------------------------------------- the language switch on the page itself
    # The Chinese reviewer picks English: saved as their own setting (PUT /api/v1/me/language),
    # the page reloads in English; API labels and later visits follow the setting.
    zh.locator("#languages a", has_text="English").click()
    zh.wait_for_selector("html[lang='en'] body[data-ready='1']", timeout=20_000)
    assert _text(zh, "#play") == "Play all" and "Evidence collection" in _text(zh, "#case-facts")
    assert "?lang" not in zh.url
    me = httpx.get(f"{url}/api/v1/me", headers=auth(reviewer)).json()
    assert me["language"] == "en" and me["role_label"] == "Case reviewer"
    assert '<html lang="en">' in zh.context.request.get(page_url).text()  # the cookie came with it
    zh.locator("#languages a", has_text="简体中文").click()
    zh.wait_for_selector("html[lang='zh-CN'] body[data-ready='1']", timeout=20_000)
    assert _text(zh, "#play") == "全部播放"
    assert httpx.get(f"{url}/api/v1/me", headers=auth(reviewer)).json()["language"] == "zh-CN"
    # Signed out (no token), the switch is a plain link: ?lang= serves that page in that language.
    anonymous = browser.new_context(locale="zh-CN").new_page()
    anonymous.goto(page_url)
    anonymous.locator("#languages a", has_text="English").click()
    anonymous.wait_for_selector("html[lang='en'] #login:not([hidden])")
    assert anonymous.url.endswith("?lang=en")
    assert zh.errors == []

"""The public face in a real browser (Debian's Chromium, headless, driven by Playwright): a visitor
goes from the start page to a published decision, the roster, a document and the yearly report; the
stylesheet loads under the CSP, nothing runs that the text smuggled in, and nothing asks for a login.

Artefact: tests/artifacts/public_face.png (git-ignored).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from archive.accounts.models import Role
from archive.config import get_settings
from archive.db import session_scope
from archive.publicity import decisions, documents, report
from archive.publicity.models import DecisionCategory, DocumentKind, PartyKind
from archive.signing import Keyring, canonical_json
from tests.archive.publicity.publicity_factories import (
    DECISION_TEXT,
    ID_NUMBER,
    case_with_decision,
    roster_entry,
    user,
)
from tests.conftest import ROOT, LiveAPI

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    *("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"),
    *("--disable-component-update", "--disable-sync", "--no-first-run"),
]
ARTIFACTS = ROOT / "tests" / "artifacts"
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


def test_a_visitor_browses_the_public_face(live_api: LiveAPI, engine: Engine, browser: Any) -> None:
    keyring = Keyring(get_settings().resolved_key_dir())
    with session_scope(engine) as s:
        admin, clerk, pub = (
            user(s, "adm", Role.ADMIN),
            user(s, "rm", Role.RECORDS_MANAGER),
            user(s, "pub", Role.PUBLISHER),
        )
        roster_entry(s, admin, "0815", name="赵刚")
        case_id, _ = case_with_decision(s, clerk, body=DECISION_TEXT + "\n附注：" + SCRIPT)
        d = decisions.register(
            s,
            pub,
            decisions.DecisionInput(
                case_id=case_id,
                category=DecisionCategory.PENALTY,
                decided_on=date(2025, 3, 3),
                party_kind=PartyKind.NATURAL_PERSON,
                party_name="张三",
                conclusion="罚款人民币200元",
            ),
        )
        r = decisions.draft_redaction(s, pub, d.id)
        decisions.approve(s, pub, d.id, r.version, r.sha256)
        doc = documents.write(
            s, pub, "remedies", DocumentKind.REMEDIES, "救济渠道", "可于六十日内申请行政复议。"
        )
        documents.approve(s, pub, "remedies", doc.version, doc.sha256)
        rep = report.draft(s, pub, 2025, keyring)
        report.publish(
            s, pub, 2025, rep.version, hashlib.sha256(canonical_json(rep.body)).hexdigest(), keyring
        )

    # A Chinese visitor's browser (Accept-Language: zh-CN): the public face in Chinese.
    page = browser.new_context(locale="zh-CN").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # CSP violations are console errors; failed loads are checked by URL (the browser's own favicon
    # request is not the page's).
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "Failed to load" not in m.text else None,
    )
    page.on(
        "response", lambda r: errors.append(r.url) if r.status >= 400 and "favicon" not in r.url else None
    )
    page.goto(f"{live_api.url}/public/")
    assert page.title().startswith("行政执法公示")
    page.locator("main a", has_text="行政执法决定").click()
    page.wait_for_url("**/public/decisions")
    assert "共 1 条" in page.locator("main").inner_text()
    page.locator("li.decision a").first.click()
    page.wait_for_url(f"**/public/decisions/{d.ref}")
    text = page.locator("pre.text").inner_text()
    assert "张某某" in text and ID_NUMBER not in text and "张三" not in text
    assert SCRIPT in text  # shown as text, never run
    assert page.evaluate("window.__pwned") is None
    # The stylesheet applied under the CSP (the header is red), with no violation reported.
    assert page.eval_on_selector("header", "h => getComputedStyle(h).backgroundColor") == "rgb(155, 28, 28)"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "public_face.png"), full_page=True)

    page.locator("nav a", has_text="执法人员").click()
    assert "C-0815" in page.locator("table.roster").inner_text()
    page.locator("nav a", has_text="事前公开").click()
    page.locator("ul.documents a", has_text="救济渠道").click()
    assert "行政复议" in page.locator("pre.text").inner_text()
    page.locator("nav a", has_text="年度报告").click()
    page.locator("ul.reports a").first.click()
    assert "2025年度行政执法总体情况" in page.locator("main").inner_text()
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    # The visible switch: a plain link to the same page in English (no script on the public face).
    page.locator("nav.languages a", has_text="English").click()
    page.wait_for_url("**/public/reports/2025?lang=en")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert "Enforcement in 2025: the yearly report" in page.locator("main").inner_text()
    # ...and the chosen language stays on as the visitor follows the page's links.
    page.locator("nav.sections a", has_text="Enforcement decisions").click()
    page.wait_for_url("**/public/decisions?lang=en")
    assert "1 in all" in page.locator("main").inner_text()
    assert "Administrative penalty" in page.locator("li.decision").inner_text()
    assert errors == []

    # An English browser gets English at once, and can switch to Chinese.
    en = browser.new_context(locale="en-US").new_page()
    en.goto(f"{live_api.url}/public/decisions/{d.ref}")
    assert en.evaluate("document.documentElement.lang") == "en"
    assert en.title().startswith("Administrative penalty decision")
    assert "Natural person" in en.locator("dl.meta").inner_text()
    en.locator("nav.languages a", has_text="简体中文").click()
    en.wait_for_url(f"**/public/decisions/{d.ref}?lang=zh-CN")
    assert en.title().startswith("行政处罚决定") and "自然人" in en.locator("dl.meta").inner_text()

"""Pages, validation errors and language settings in the reader's language, in-process (TestClient):

- a 422 names each field and says what is wrong in the request's language (zh-CN by default), the
  stable ``code`` beside it;
- the public face is served in one language (``?lang=``, then Accept-Language, then the agency's
  zh-CN), ``<html lang>`` set, with a plain link to the other language that the page's links keep;
  a signed-in officer's language cookie does not change a publicly cached answer;
- the oversight and review pages are served in the reader's language, with the words their scripts
  write in the page's data block, and a language switch;
- ``PUT /api/v1/me/language`` carries the choice to this browser's pages (the cookie).

The same pages in Chromium: tests/api/test_review_page_i18n.py, test_legal_page.py,
test_oversight_page.py, test_public_browser.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from archive.config import get_settings
from migrations import migrate
from tests.api.test_public_face import seeded  # noqa: F401 - the published, withdrawn and draft world

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-US,en;q=0.9"}


@pytest.fixture
def client(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app in this process, as an agency that keeps the default language (zh-CN)."""
    monkeypatch.setenv("CUSTODY_LANGUAGE", "zh-CN")
    monkeypatch.setenv("CUSTODY_PUBLIC_RATE_LIMIT", "1000/minute")
    get_settings.cache_clear()
    migrate(get_settings())
    from api.app import create_app

    with TestClient(create_app(), base_url="http://testserver") as c:
        yield c
    get_settings.cache_clear()


def auth(token: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **(headers or {})}


def _data(html: str, block: str) -> Any:
    m = re.search(rf'<script type="application/json" id="{block}">(.*?)</script>', html, re.S)
    assert m, block
    return json.loads(m.group(1))


# ------------------------------------------------------------------------------- validation (422)


def test_validation_errors_name_the_field_in_the_request_language(client: TestClient, make_user: Any) -> None:
    clerk = make_user("clerk", "records-manager")
    body = {"number": "", "kind": "no-such-kind", "reviewers": ["bad name!"]}
    zh = client.post("/api/v1/cases", json=body, headers=auth(clerk, ZH))
    assert zh.status_code == 422 and zh.json()["code"] == "request.invalid"
    detail = zh.json()["detail"]
    assert detail.startswith("请求无效：")
    assert "请求体字段 number：至少应有 1 个字符" in detail
    assert "请求体字段 title：为必填项" in detail
    assert "请求体字段 kind：应为以下之一：" in detail
    assert "请求体字段 reviewers.0：格式不符合要求" in detail
    assert "Field required" not in detail and "String should" not in detail  # no pydantic English
    assert zh.headers["content-language"] == "zh-CN"

    en = client.post("/api/v1/cases", json=body, headers=auth(clerk, EN))
    assert en.json()["code"] == "request.invalid"
    assert "body field title: is required" in en.json()["detail"]
    assert "body field number: must have at least 1 characters" in en.json()["detail"]

    # No Accept-Language: the agency's default (zh-CN). Query parameters and whole bodies too.
    q = client.get("/api/v1/cases", params={"limit": "0"}, headers=auth(clerk))
    assert q.json() == {"detail": "请求无效：查询参数 limit：不得小于 1", "code": "request.invalid"}
    q = client.get("/api/v1/cases", params={"limit": "many"}, headers=auth(clerk, EN))
    assert q.json()["detail"] == "invalid request: query parameter limit: must be a whole number"
    broken = client.post(
        "/api/v1/cases", content=b"{not json", headers=auth(clerk, {"Content-Type": "application/json"})
    )
    assert broken.status_code == 422 and "不是有效的 JSON" in broken.json()["detail"]
    # A time typed in the agency's zone that is not a time: our own validator's words, translated.
    records = client.post(
        "/api/v1/cases/x/records",
        json={
            "stage": "filing",
            "doc_kind": "report",
            "author": "a",
            "occurred_from": "soon",
            "occurred_to": "later",
            "body": "b",
        },
        headers=auth(clerk, ZH),
    )
    assert records.status_code == 422 and "请求体字段 occurred_from：" in records.json()["detail"]


# ---------------------------------------------------------------------------------- public face


def test_public_pages_in_one_language_with_a_switch(client: TestClient, seeded: dict[str, Any]) -> None:  # noqa: F811
    # No Accept-Language: the agency's default, Chinese only.
    zh = client.get("/public/decisions")
    assert zh.status_code == 200 and '<html lang="zh-CN">' in zh.text
    assert zh.headers["content-language"] == "zh-CN" and "Accept-Language" in zh.headers["vary"]
    assert "<h1>行政执法决定</h1>" in zh.text and "共 2 条" in zh.text and "行政处罚" in zh.text
    assert "Enforcement decisions" not in zh.text and 'class="en"' not in zh.text  # not side by side
    assert '<a href="/public/decisions?lang=en" hreflang="en" lang="en">English</a>' in zh.text
    assert "本决定已于" in zh.text and "依法撤销" in zh.text  # the withdrawal notice, in Chinese
    assert "<script" not in zh.text

    en = client.get("/public/decisions", headers=EN)
    assert '<html lang="en">' in en.text and en.headers["content-language"] == "en"
    assert "<h1>Enforcement decisions</h1>" in en.text and "2 in all" in en.text
    assert "Administrative penalty" in en.text and "This decision was withdrawn on" in en.text
    assert "Revoked according to law" in en.text and "Legal person or other organisation" in en.text
    assert "行政执法决定" not in en.text
    assert 'href="/public/decisions?lang=zh-CN" hreflang="zh-CN" lang="zh-CN">简体中文</a>' in en.text
    assert zh.headers["etag"] != en.headers["etag"]

    # The switch: ?lang= beats Accept-Language, and the page's own links keep the choice.
    chosen = client.get("/public/decisions", params={"category": "penalty", "lang": "en"}, headers=ZH)
    assert '<html lang="en">' in chosen.text
    assert 'href="/public/roster?lang=en"' in chosen.text
    assert f'href="/public/decisions/{seeded["published_ref"]}?lang=en"' in chosen.text
    # the switch back keeps the filter
    assert 'href="/public/decisions?category=penalty&amp;lang=zh-CN"' in chosen.text
    # A language the visitor did not choose is not written into links.
    assert 'href="/public/roster"' in en.text

    # A signed-in officer's language cookie does not change a public, cached answer.
    client.cookies.set("custody_lang", "en")
    cookie = client.get("/public/decisions", headers=ZH)
    assert '<html lang="zh-CN">' in cookie.text
    client.cookies.clear()

    one = client.get(f"/public/decisions/{seeded['published_ref']}", headers=EN)
    assert "<title>Administrative penalty decision" in one.text and "Decided on" in one.text
    one_zh = client.get(f"/public/decisions/{seeded['published_ref']}")
    assert (
        "<title>行政处罚决定" in one_zh.text and "决定日期" in one_zh.text and "法人或其他组织" in one_zh.text
    )

    roster = client.get("/public/roster", headers=EN)
    assert "<th>Badge number</th>" in roster.text and "赵刚" in roster.text and " to " in roster.text
    assert "<th>警号</th>" in client.get("/public/roster").text
    docs = client.get("/public/documents", headers=EN)
    assert "Remedies" in docs.text and "救济渠道" in docs.text  # the kind translated; the title is data
    doc = client.get("/public/documents/remedies", headers=EN)
    assert "version 1" in doc.text
    assert "第 1 版" in client.get("/public/documents/remedies").text

    report_en = client.get("/public/reports/2025", headers=EN)
    assert "Enforcement in 2025: the yearly report" in report_en.text
    assert "<th>Published on time</th>" in report_en.text and "Signed (Ed25519) with key" in report_en.text
    report_zh = client.get("/public/reports/2025")
    assert "2025年度行政执法总体情况" in report_zh.text and "<th>按时公开</th>" in report_zh.text
    assert "生成于" in report_zh.text and "北京时间" in report_zh.text  # when it was generated, zone named
    index = client.get("/public/", headers=EN)
    assert '<html lang="en">' in index.text and 'href="/public/reports"' in index.text


# ------------------------------------------------------------------------- signed-in pages


def test_oversight_page_in_the_readers_language(client: TestClient) -> None:
    zh = client.get("/oversight", headers=ZH)
    assert zh.status_code == 200 and '<html lang="zh-CN">' in zh.text
    assert "<title>执法全过程记录监督 - 执法音视频档案</title>" in zh.text and "<th>民警</th>" in zh.text
    assert "Recording oversight" not in zh.text and "以下时间均为北京时间（UTC+08:00）" in zh.text
    assert "script-src 'self'" in zh.headers["content-security-policy"]
    texts, labels = _data(zh.text, "page-text"), _data(zh.text, "page-labels")
    assert texts["no_run"] == "尚未检查" and labels["warning"]["gaps"] == "音像记录有间断"
    assert _data(zh.text, "page-clock")["timezone"] == "Asia/Shanghai"
    assert 'id="languages"' in zh.text and '<script src="/pages/language.js" defer></script>' in zh.text

    en = client.get("/oversight", headers=EN)
    assert '<html lang="en">' in en.text and "<th>Officer</th>" in en.text
    assert _data(en.text, "page-labels")["warning"]["gaps"] == "gaps in the recording"
    assert "All times are CST (UTC+08:00), Asia/Shanghai." in en.text
    assert '<html lang="en">' in client.get("/oversight?lang=en", headers=ZH).text


def test_review_page_carries_the_legal_and_coverage_words(client: TestClient) -> None:
    zh = client.get("/cases/any", headers=ZH)
    texts, labels = _data(zh.text, "page-text"), _data(zh.text, "page-labels")
    assert texts["legal_overdue"] == "超期" and texts["answer_fail"] == "不符合"
    assert texts["legal_rule"].startswith("需法制审核：") and labels["decision_kind"]["fine"] == "罚款"
    assert labels["coverage_status"]["gaps"] == "有间断" and labels["coverage_mode"]["av"] == "应当音像记录"
    assert 'aria-label="文字笔录的音像记录覆盖情况"' in zh.text
    en = client.get("/cases/any", headers=EN)
    texts, labels = _data(en.text, "page-text"), _data(en.text, "page-labels")
    assert texts["answer_n/a"] == "not applicable" and labels["decision_kind"]["fine"] == "Fine"
    assert labels["coverage_status"]["missing"] == "missing"
    # the language switch: links without script, the script saves the choice when signed in
    assert '<a href="?lang=en"' not in zh.text or 'data-lang="en"' in zh.text
    assert client.get("/pages/language.js").headers["content-type"].startswith("text/javascript")
    # one local-time formatter for both signed-in pages (clock.js), loaded before the page's own script
    assert client.get("/pages/clock.js").headers["content-type"].startswith("text/javascript")
    pages = {"/cases/any": "/pages/review.js", "/oversight": "/oversight/assets/oversight.js"}
    for page, script in pages.items():
        html = client.get(page, headers=ZH).text
        clock = html.index('<script src="/pages/clock.js" defer></script>')
        assert clock < html.index(f'<script src="{script}"')


@pytest.mark.parametrize("role", ["officer", "reviewer", "auditor", "records-manager", "admin"])
def test_every_role_sets_its_language_and_its_pages_follow(
    client: TestClient, make_user: Any, role: str
) -> None:
    token = make_user("u1", role)
    r = client.put("/api/v1/me/language", json={"language": "en"}, headers=auth(token, ZH))
    assert r.status_code == 200 and r.json()["language"] == "en"
    assert r.cookies.get("custody_lang") == "en"  # this browser's pages follow at once
    page = client.get("/cases/any", headers=ZH)
    assert '<html lang="en">' in page.text
    r = client.put("/api/v1/me/language", json={"language": "zh-CN"}, headers=auth(token, EN))
    assert r.json()["effective_language"] == "zh-CN"
    assert '<html lang="zh-CN">' in client.get("/oversight", headers=EN).text
    # cleared: the browser decides again, and the cookie goes
    r = client.put("/api/v1/me/language", json={"language": None}, headers=auth(token, EN))
    assert r.json()["language"] is None and "custody_lang" not in client.cookies
    assert '<html lang="en">' in client.get("/oversight", headers=EN).text
    bad = client.put("/api/v1/me/language", json={"language": "fr"}, headers=auth(token, ZH))
    assert bad.status_code == 400 and "zh-CN" in bad.json()["detail"]
    anonymous = client.put("/api/v1/me/language", json={"language": "en"})
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"


# ------------------------------------------------------------------------------- guards


def test_page_scripts_hold_no_words_of_their_own() -> None:
    """The words a page's script writes come from the page's data blocks, in the page's language:
    a script with Chinese (or Chinese beside English, "符合 pass") outside its comments is refused."""
    from tests.conftest import ROOT

    offenders = []
    for script in sorted((ROOT / "api" / "pages").glob("*.js")):
        for number, line in enumerate(script.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("//", 1)[0]
            if re.search(r"[\u4e00-\u9fff]", code):
                offenders.append(f"{script.name}:{number}: {line.strip()}")
    assert not offenders, offenders
    # ...and every key a script asks for with t("...") is in the texts its page is served with.
    from api.routers import cases, oversight

    served = {"review.js": set(cases._review_texts()), "oversight.js": set(oversight._texts())}
    for name, keys in served.items():
        source = (ROOT / "api" / "pages" / name).read_text(encoding="utf-8")
        asked = set(re.findall(r'\bt\("([a-z_/]+)"', source))
        asked |= {f"answer_{a}" for a in ("pass", "fail", "n/a")} if name == "review.js" else set()
        asked.discard("answer_")
        assert asked <= keys, (name, sorted(asked - keys))


def test_docs_explain_how_to_add_a_language() -> None:
    from tests.conftest import ROOT

    doc = (ROOT / "docs" / "i18n.md").read_text(encoding="utf-8")
    section = doc.split("## Adding a language", 1)[1]
    for step in ("archive.i18n.LANGUAGES", "pybabel init", "archive/vocabulary.json", "test_i18n.py"):
        assert step in section, step

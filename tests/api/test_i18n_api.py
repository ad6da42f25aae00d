"""The API and pages in the user's language: the user's own setting, then Accept-Language, then the
agency's default (zh-CN); every error answers a stable machine code beside a translated detail."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.accounts.models import User
from archive.models import Event
from tests.case_factories import auth, new_case
from tests.conftest import LiveAPI, free_port

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-US,en;q=0.9"}
ROLES = ["officer", "reviewer", "auditor", "records-manager", "admin"]


@pytest.fixture
def zh_api(env: dict[str, str], tmp_path: Path) -> Iterator[LiveAPI]:
    """The API of an agency that keeps the default language (the suite otherwise runs in English)."""
    from archive.config import get_settings
    from migrations import migrate

    port = free_port()
    api = LiveAPI(f"http://127.0.0.1:{port}", port, {**env, "CUSTODY_LANGUAGE": "zh-CN"}, tmp_path)
    migrate(get_settings())
    api.start()
    yield api
    api.stop()


def test_errors_carry_a_code_and_a_detail_in_the_request_language(zh_api: LiveAPI, make_user: Any) -> None:
    url = zh_api.url
    clerk = make_user("clerk", "records-manager")
    # No Accept-Language at all: the agency's default, Chinese.
    r = httpx.get(f"{url}/api/v1/no-such-route")
    assert r.status_code == 404 and r.json() == {"detail": "未找到", "code": "not_found"}
    assert r.headers["content-language"] == "zh-CN" and "Accept-Language" in r.headers["vary"]
    r = httpx.get(f"{url}/api/v1/no-such-route", headers=EN)
    assert r.json() == {"detail": "not found", "code": "not_found"} and r.headers["content-language"] == "en"
    # A refusal, a missing case, a validation error: each with its own code.
    assert httpx.get(f"{url}/api/v1/cases").json()["code"] == "unauthorized"
    missing = httpx.get(f"{url}/api/v1/cases/nope", headers={**auth(clerk), **ZH})
    assert missing.status_code == 404 and missing.json()["code"] == "case.not_found"
    bad = httpx.post(f"{url}/api/v1/cases", json={"number": "1"}, headers={**auth(clerk), **ZH})
    assert bad.status_code == 422 and bad.json()["code"] == "request.invalid"
    assert bad.json()["detail"].startswith("请求无效：")
    bad_en = httpx.post(f"{url}/api/v1/cases", json={"number": "1"}, headers={**auth(clerk), **EN})
    assert bad_en.json()["detail"].startswith("invalid request: ")
    wrong_method = httpx.delete(f"{url}/api/v1/me", headers=ZH)
    assert wrong_method.json() == {"detail": "不支持该请求方法", "code": "method_not_allowed"}


def test_labels_come_in_the_request_language(zh_api: LiveAPI, make_user: Any) -> None:
    url = zh_api.url
    clerk = make_user("clerk", "records-manager")
    case = new_case(url, clerk, stage="evidence-collection")
    zh = httpx.get(f"{url}/api/v1/cases/{case['id']}", headers=auth(clerk)).json()
    assert (zh["stage"], zh["stage_label"], zh["kind_label"], zh["status_label"]) == (
        "evidence-collection",
        "取证",
        "行政案件",
        "办理中",
    )
    en = httpx.get(f"{url}/api/v1/cases/{case['id']}", headers={**auth(clerk), **EN}).json()
    assert (en["stage"], en["stage_label"]) == ("evidence-collection", "Evidence collection")


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sets_its_own_language(
    live_api: LiveAPI, make_user: Any, engine: Engine, role: str
) -> None:
    url = live_api.url
    token = make_user("u1", role)
    me = httpx.get(f"{url}/api/v1/me", headers={**auth(token), **ZH}).json()
    assert me["language"] is None and me["effective_language"] == "zh-CN"  # the browser's
    assert me["role_label"] != role  # a name people read, e.g. 档案管理员
    put = httpx.put(f"{url}/api/v1/me/language", json={"language": "en"}, headers={**auth(token), **ZH})
    assert put.status_code == 200 and put.json()["language"] == "en"
    # Their own setting now beats the browser's Accept-Language, in answers and errors alike.
    me = httpx.get(f"{url}/api/v1/me", headers={**auth(token), **ZH})
    assert me.json()["effective_language"] == "en" and me.headers["content-language"] == "en"
    bad = httpx.post(f"{url}/api/v1/cases", json={}, headers={**auth(token), **ZH})
    assert bad.json()["code"] == "request.invalid" and bad.json()["detail"].startswith("invalid request: ")
    # No token read (no such route): nothing but the browser's language to go by.
    missing = httpx.get(f"{url}/api/v1/nowhere", headers={**auth(token), **ZH})
    assert missing.json()["detail"] == "未找到"
    cleared = httpx.put(f"{url}/api/v1/me/language", json={"language": None}, headers={**auth(token), **ZH})
    assert cleared.json()["language"] is None and cleared.json()["effective_language"] == "zh-CN"
    with Session(engine) as s:
        changes = list(s.exec(select(Event).where(Event.action == "user.language")))
    assert [(e.actor, e.details["before"], e.details["after"]) for e in changes] == [
        ("user:u1", None, "en"),
        ("user:u1", "en", None),
    ]


def test_language_setting_refusals(live_api: LiveAPI, make_user: Any, engine: Engine) -> None:
    url = live_api.url
    token = make_user("u1", "officer")
    anonymous = httpx.put(f"{url}/api/v1/me/language", json={"language": "en"})
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"
    klingon = httpx.put(f"{url}/api/v1/me/language", json={"language": "tlh"}, headers=auth(token))
    assert klingon.status_code == 400 and klingon.json()["code"] == "user.language_unsupported"
    assert "zh-CN, en" in klingon.json()["detail"]
    zh = httpx.put(f"{url}/api/v1/me/language", json={"language": "zh_CN.UTF-8"}, headers=auth(token))
    assert zh.json()["language"] == "zh-CN"  # stored in its canonical form
    with Session(engine) as s:
        assert s.exec(select(User).where(User.name == "u1")).one().language == "zh-CN"


def _page(url: str, **kw: Any) -> tuple[str, httpx.Response]:
    r = httpx.get(url, **kw)
    assert r.status_code == 200
    return r.text, r


def _data(page: str, block: str) -> Any:
    m = re.search(rf'<script type="application/json" id="{block}">(.*?)</script>', page, re.S)
    assert m, block
    return json.loads(m.group(1))


def test_pages_are_served_in_the_chosen_language(zh_api: LiveAPI, make_user: Any) -> None:
    url = zh_api.url
    clerk = make_user("clerk", "records-manager")
    case = new_case(url, clerk)
    page_url = f"{url}/cases/{case['id']}"

    zh, r = _page(page_url)  # no Accept-Language: the agency's default
    assert '<html lang="zh-CN">' in zh and "全部播放" in zh and "文字笔录" in zh
    assert "北京时间（UTC+08:00）" in zh and "All times UTC" not in zh
    assert _data(zh, "page-labels")["stage"]["filing"] == "立案"
    assert _data(zh, "page-text")["pause"] == "全部暂停"
    assert _data(zh, "page-clock")["timezone"] == "Asia/Shanghai"
    assert r.headers["content-language"] == "zh-CN"
    assert "script-src 'self'" in r.headers["content-security-policy"]

    en, r = _page(page_url, headers=EN)
    assert '<html lang="en">' in en and "Play all" in en and "CST (UTC+08:00), Asia/Shanghai" in en
    assert _data(en, "page-labels")["doc_kind"]["inquiry-transcript"] == "Inquiry transcript"
    # The page's own language links, then the user's setting (cookie), then Accept-Language.
    assert '<html lang="en">' in _page(f"{page_url}?lang=en", headers=ZH)[0]
    assert '<html lang="en">' in _page(page_url, headers={**ZH, "Cookie": "custody_lang=en"})[0]
    assert '<html lang="zh-CN">' in _page(f"{page_url}?lang=zh-CN", headers={"Cookie": "custody_lang=en"})[0]
    # A hostile value is only ever a language tag or nothing.
    odd, _ = _page(f"{page_url}?lang=%22%3E%3Cscript%3E", headers=EN)
    assert '<html lang="en">' in odd and "<script>" not in odd.split("</head>")[1]


def test_the_session_carries_the_users_language_to_pages(live_api: LiveAPI, make_user: Any) -> None:
    url = live_api.url
    token = make_user("rev1", "reviewer")
    plain = httpx.post(f"{url}/api/v1/session", headers={**auth(token), **ZH})
    assert plain.status_code == 204 and plain.headers["content-language"] == "zh-CN"
    assert 'custody_lang=""' in plain.headers.get("set-cookie", "") or "Max-Age=0" in str(
        plain.headers.get_list("set-cookie")
    )
    httpx.put(f"{url}/api/v1/me/language", json={"language": "en"}, headers=auth(token))
    opened = httpx.post(f"{url}/api/v1/session", headers={**auth(token), **ZH})
    assert opened.headers["content-language"] == "en"
    cookie = next(c for c in opened.headers.get_list("set-cookie") if c.startswith("custody_lang="))
    assert cookie.startswith("custody_lang=en;") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/;" in cookie

"""Publicity on the embedded default: the real API (uvicorn) on a SQLite file, from the roster to the
public feed, a withdrawal, the due list and a signed yearly report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from archive.accounts import services as accounts
from archive.accounts.models import Role
from archive.config import get_settings
from archive.db import make_engine, session_scope
from migrations import migrate
from tests.api.test_publicity_api import _case_with_decision, _decision
from tests.archive.publicity.publicity_factories import ID_NUMBER, PARTY
from tests.case_factories import auth
from tests.conftest import LiveAPI, free_port


@pytest.fixture
def sqlite_api(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LiveAPI, Engine]]:
    url = f"sqlite:///{tmp_path / 'custody.db'}"
    monkeypatch.setenv("CUSTODY_DATABASE_URL", url)
    get_settings.cache_clear()
    migrate(get_settings())
    engine = make_engine(url)
    port = free_port()
    api = LiveAPI(f"http://127.0.0.1:{port}", port, {**env, "CUSTODY_DATABASE_URL": url}, tmp_path)
    api.start()
    yield api, engine
    api.stop()
    engine.dispose()


def test_publicity_on_sqlite(sqlite_api: tuple[LiveAPI, Engine]) -> None:
    api, engine = sqlite_api
    with session_scope(engine) as s:
        admin = accounts.add_user(s, "adm", Role.ADMIN)[1]
        clerk = accounts.add_user(s, "rm", Role.RECORDS_MANAGER)[1]
        pub = accounts.add_user(s, "pub", Role.PUBLISHER)[1]
        accounts.add_user(s, "0815", Role.OFFICER)
    base = f"{api.url}/api/v1/publicity"
    csv = (
        "officer,name,unit,post,badge_no,certificate_no,category,area,valid_from,valid_to\n"
        "0815,赵刚,交警大队,民警,J0815,C-0815,公安,某某县,2020-01-01,2030-12-31\n"
    )
    r = httpx.post(
        f"{base}/roster/import", headers={**auth(admin), "Content-Type": "text/csv"}, content=csv.encode()
    )
    assert r.status_code == 200 and r.json()["added"] == 1, r.text
    bad = csv.replace("C-0815", "C-0816").replace("2030-12-31", "31.12.2030x")
    r = httpx.post(
        f"{base}/roster/import", headers={**auth(admin), "Content-Type": "text/csv"}, content=bad.encode()
    )
    assert r.status_code == 422 and "row 2, field valid_to" in r.text
    assert len(httpx.get(f"{base}/roster", headers=auth(pub)).json()) == 1

    case_id = _case_with_decision(api.url, clerk, "S-1")
    d = httpx.post(f"{base}/decisions", headers=auth(pub), json=_decision(case_id)).json()
    assert d["deadline"] == "2025-03-12"
    red = httpx.post(f"{base}/decisions/{d['id']}/redactions", headers=auth(pub), json={}).json()
    assert ID_NUMBER not in red["text"] and PARTY not in red["text"]
    r = httpx.post(
        f"{base}/decisions/{d['id']}/approve", headers=auth(pub), json={"version": 1, "sha256": red["sha256"]}
    )
    assert r.status_code == 200, r.text
    feed = httpx.get(f"{api.url}/public/api/decisions").json()
    assert feed["total"] == 1 and feed["items"][0]["text"] == red["text"]
    # The public face in Chinese (this suite runs as an English-speaking agency: conftest)
    assert "行政处罚" in httpx.get(f"{api.url}/public/decisions", params={"lang": "zh-CN"}).text
    assert "赵刚" in httpx.get(f"{api.url}/public/roster").text

    r = httpx.post(
        f"{base}/decisions/{d['id']}/withdraw",
        headers=auth(pub),
        json={"ground": "annulled", "reason": "被法院撤销"},
    )
    assert r.status_code == 200
    item = httpx.get(f"{api.url}/public/api/decisions/{d['ref']}").json()
    assert item["text"] is None and item["withdrawn"]["ground_label"] == "被复议机关或人民法院撤销、确认违法"

    due = httpx.get(f"{base}/due?soon=2", headers=auth(clerk))
    assert due.status_code == 200 and due.json()["overdue"] == []
    rep = httpx.post(f"{base}/reports/2025/draft", headers=auth(pub))
    assert rep.status_code == 201, rep.text
    assert (
        rep.json()["body"]["totals"]["withdrawn"] == 1 and rep.json()["signature"]["algorithm"] == "ed25519"
    )

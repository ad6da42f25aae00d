"""Cases on the embedded default: the real API (uvicorn) on a SQLite file, with FTS5 search, the
partial unique index on open links, the append-only triggers and date-range finding."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from archive.accounts import services as accounts
from archive.accounts.models import Role
from archive.cases.models import Case, CaseMedia, TextRecord
from archive.config import get_settings
from archive.db import make_engine, session_scope
from migrations import migrate
from tests.case_factories import T, auth, media_row, new_case, record_body
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


def _counts(engine: Engine) -> tuple[int, ...]:
    with Session(engine) as s:
        return tuple(
            int(s.exec(select(func.count()).select_from(m)).one()) for m in (Case, TextRecord, CaseMedia)
        )


def test_cases_records_search_and_links_on_sqlite(sqlite_api: tuple[LiveAPI, Engine]) -> None:
    api, engine = sqlite_api
    url = api.url
    with session_scope(engine) as s:
        clerk = accounts.add_user(s, "clerk", Role.RECORDS_MANAGER)[1]
        rev1 = accounts.add_user(s, "rev1", Role.REVIEWER)[1]
    in_window = media_row(engine, recorded_at=T + timedelta(minutes=2))
    loose = media_row(engine, recorded_at=T + timedelta(days=2))
    case = new_case(url, clerk, number="E-1", reviewers=["rev1"])
    recs = f"{url}/api/v1/cases/{case['id']}/records"
    first = httpx.post(
        recs,
        json=record_body(T, T + timedelta(minutes=10), ["0815"], body="Loud music after midnight."),
        headers=auth(clerk),
    )
    assert first.status_code == 201 and first.json()["linked_media"] == [in_window]
    rid = first.json()["record"]["record_id"]
    v2 = httpx.post(
        f"{recs}/{rid}/versions",
        json=record_body(
            T, T + timedelta(minutes=12), ["0815"], body="Loud music until 01:30; neighbours woken."
        ),
        headers=auth(rev1),
    )
    assert v2.status_code == 201 and v2.json()["record"]["version"] == 2
    versions = httpx.get(f"{recs}/{rid}", headers=auth(rev1)).json()
    assert [v["version"] for v in versions] == [1, 2]

    def search(q: str) -> list[int]:
        r = httpx.get(f"{url}/api/v1/records/search", headers=auth(rev1), params={"q": q})
        assert r.status_code == 200, r.text
        return sorted(x["version"] for x in r.json())

    assert search("MUSIC") == [1, 2] and search("neighbours woken") == [2] and search("alcohol") == []
    assert search('"midnight*') == [1]  # FTS5 syntax in the query is just words

    def numbers(**params: str) -> list[str]:
        r = httpx.get(f"{url}/api/v1/cases", headers=auth(rev1), params=params)
        assert r.status_code == 200, r.text
        return [c["number"] for c in r.json()["items"]]

    assert numbers(officer="0815") == ["E-1"] and numbers(officer="4711") == []
    assert numbers(since=(T + timedelta(minutes=11)).isoformat()) == ["E-1"]
    assert numbers(since=(T + timedelta(minutes=13)).isoformat()) == []
    assert numbers(until="2024-06-10T11:59:00+02:00") == []  # 09:59 UTC: before the window
    assert numbers(until="2024-06-10T12:01:00+02:00") == ["E-1"]

    def media(token: str, **params: str) -> set[str]:
        r = httpx.get(f"{url}/api/v1/media", headers=auth(token), params=params)
        assert r.status_code == 200, r.text
        return {m["id"] for m in r.json()["items"]}

    assert media(rev1) == {in_window}
    assert media(clerk, linked="false") == {loose}
    assert media(clerk, since=(T + timedelta(days=1)).isoformat()) == {loose}

    # Link, unlink, link again: the open-link index on SQLite allows one open link per pair.
    link = f"{url}/api/v1/cases/{case['id']}/media"
    assert (
        httpx.post(link, json={"media_id": loose, "reason": "same car"}, headers=auth(clerk)).status_code
        == 201
    )
    asked = httpx.post(f"{link}/{loose}/unlink", json={"reason": "other car"}, headers=auth(clerk))
    assert asked.status_code == 202, asked.text
    with session_scope(engine) as s:
        admin = accounts.add_user(s, "root", Role.ADMIN)[1]
    r = httpx.post(f"{url}/api/v1/approvals/{asked.json()['id']}/approve", json={}, headers=auth(admin))
    assert r.status_code == 200 and r.json()["result"]["media"] == loose, r.text
    assert (
        httpx.post(link, json={"media_id": loose, "reason": "it was"}, headers=auth(clerk)).status_code == 201
    )
    history = httpx.get(link, headers=auth(clerk), params={"include_unlinked": "true"}).json()
    assert [(h["media_id"], h["unlink_reason"]) for h in history] == [
        (in_window, None),
        (loose, "other car"),
        (loose, None),
    ]
    timeline = httpx.get(f"{url}/api/v1/cases/{case['id']}/timeline", headers=auth(rev1)).json()
    assert [i.get("id") for i in timeline["items"]] == [None, in_window, loose]

    # Bad input on SQLite too: clear errors, nothing stored.
    before = _counts(engine)
    dup = httpx.post(
        f"{url}/api/v1/cases", json={"number": "E-1", "title": "t", "kind": "criminal"}, headers=auth(clerk)
    )
    assert dup.status_code == 409
    assert (
        httpx.post(recs, json=record_body(T, T - timedelta(seconds=1), []), headers=auth(clerk)).status_code
        == 400
    )
    assert httpx.post(recs, json=record_body(T, T, [], stage="trial"), headers=auth(clerk)).status_code == 422
    assert (
        httpx.post(recs, json=record_body(T, T, [], body="x" * 200_001), headers=auth(clerk)).status_code
        == 400
    )
    assert _counts(engine) == before
    staged = httpx.patch(f"{url}/api/v1/cases/{case['id']}", json={"stage": "review"}, headers=auth(clerk))
    assert staged.status_code == 200 and numbers(stage="review") == ["E-1"]
    # The decision stage is reached only through a proposed decision (legal review, issue 12).
    gated = httpx.patch(f"{url}/api/v1/cases/{case['id']}", json={"stage": "decision"}, headers=auth(clerk))
    assert gated.status_code == 409 and "proposed decision" in gated.json()["detail"]

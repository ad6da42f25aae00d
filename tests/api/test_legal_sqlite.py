"""Legal review on the embedded SQLite default, through the real API: submit, answer, approve, the
gate, amendment voiding the approval, the overdue list, and refusals that store nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from archive.config import get_settings
from archive.db import make_engine
from migrations import migrate
from tests.api.test_legal_api import Client, approve, fill_future_years, proposal
from tests.archive.legal.legal_factories import POINTS, World, counts, make_case, make_users
from tests.case_factories import T, record_body
from tests.conftest import LiveAPI, free_port


@pytest.fixture
def sqlite_world(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LiveAPI, World]]:
    url = f"sqlite:///{tmp_path / 'custody.db'}"
    monkeypatch.setenv("CUSTODY_DATABASE_URL", url)
    get_settings.cache_clear()
    migrate(get_settings())
    engine: Engine = make_engine(url)
    users, tokens = make_users(engine)
    fill_future_years(engine, users)
    case_id, report, document, media = make_case(engine, users)
    port = free_port()
    api = LiveAPI(f"http://127.0.0.1:{port}", port, {**env, "CUSTODY_DATABASE_URL": url}, tmp_path)
    api.start()
    yield api, World(engine, users, tokens, case_id, report, document, media)
    api.stop()
    engine.dispose()


def test_legal_review_on_sqlite(sqlite_world: tuple[LiveAPI, World]) -> None:
    live, w = sqlite_world
    api = Client(live.url, w)
    case = f"/cases/{w.case_id}"
    refused = api("PATCH", case, "clerk", json={"stage": "decision"})
    assert refused.status_code == 409 and "proposed decision" in refused.json()["detail"]

    before = counts(w.engine)
    bad = api(
        "POST", f"{case}/legal-review/submissions", "rev1", json=proposal(w, evidence=[{"media_id": "nope"}])
    )
    assert bad.status_code == 422 and "is not linked" in bad.json()["detail"]
    assert counts(w.engine) == before

    sub = api("POST", f"{case}/legal-review/submissions", "rev1", json=proposal(w))
    assert sub.status_code == 201, sub.text
    st: dict[str, Any] = api("GET", f"{case}/legal-review", "clerk").json()
    assert (st["status"], st["required"], st["rule"]) == ("pending", True, "administrative-penalty") and st[
        "due"
    ]
    pending = api("GET", "/legal-reviews", "lr1").json()
    assert pending["total"] == 1 and pending["items"][0]["case_number"] == "L-1"
    assert api("GET", "/legal-reviews", "lr1", params={"overdue": "true"}).json()["total"] == 0
    gated = api("PATCH", case, "clerk", json={"stage": "decision"})
    assert gated.status_code == 409 and "legal review" in gated.json()["detail"]

    # Two decisions at once on one submission: one wins, the other 409 (SQLite has no row locks).
    sub_id = sub.json()["id"]
    for p in POINTS:
        assert (
            api("PUT", f"/legal-reviews/{sub_id}/answers/{p}", "lr1", json={"result": "pass"}).status_code
            == 200
        )
    results: list[int] = []

    def decide(outcome: str) -> None:
        r = api(
            "POST",
            f"/legal-reviews/{sub_id}/opinion",
            "lr1",
            json={"outcome": outcome, "reasons": "r", "attest": True},
        )
        results.append(r.status_code)

    threads = [threading.Thread(target=decide, args=(o,)) for o in ("approve", "disapprove")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [201, 409], results
    if api("GET", f"{case}/legal-review", "clerk").json()["status"] != "approved":
        v = api("POST", f"{case}/legal-review/submissions", "rev1", json={**proposal(w), "amends": 1}).json()
        assert approve(api, v["id"]).status_code == 201
    assert api("GET", f"{case}/legal-review", "clerk").json()["status"] == "approved"
    assert api("PATCH", case, "clerk", json={"stage": "decision"}).status_code == 200
    rec = api(
        "POST", f"{case}/records", "clerk", json=record_body(T, T, [], stage="decision", doc_kind="decision")
    )
    assert rec.status_code == 201

    current = api("GET", f"{case}/legal-review", "clerk").json()["submission"]["version"]
    v2 = api("POST", f"{case}/legal-review/submissions", "rev1", json={**proposal(w), "amends": current})
    assert v2.status_code == 201
    history = api("GET", f"{case}/legal-review", "clerk").json()["history"]
    assert [h["state"] for h in history][:2] == ["pending", "voided"]
    rec = api(
        "POST", f"{case}/records", "clerk", json=record_body(T, T, [], stage="decision", doc_kind="decision")
    )
    assert rec.status_code == 409

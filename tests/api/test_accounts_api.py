"""Accounts with a lifecycle over HTTP (issue 10, finding 5), against the real API process: disable,
rotate and role changes take effect on the next request; expired tokens; page sessions (logout for
every role, idle and lifetime); the streaming cookie dies with its credential; failed authentication
throttled per address and per account, 429 with Retry-After, logged once per window."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive.accounts import services as accounts
from archive.accounts.models import SessionVia, User
from archive.db import session_scope
from archive.models import Event
from tests.conftest import LiveAPI, free_port

ROLES = [
    "officer",
    "reviewer",
    "auditor",
    "records-manager",
    "admin",
    "legal-reviewer",
    "approver",
    "publisher",
]


def _events(engine: Engine, action: str) -> list[Event]:
    with Session(engine) as s:
        return list(s.exec(select(Event).where(Event.action == action).order_by(col(Event.id))))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _session_for(engine: Engine, name: str) -> str:
    with session_scope(engine) as s:
        user = s.exec(select(User).where(User.name == name)).one()
        _row, token = accounts.start_session(s, user, via=SessionVia.OIDC, client_addr="127.0.0.1")
    return token


def _from(addr: str) -> httpx.Client:
    """A client whose connections come from ``addr`` (any 127.x.y.z is this machine's loopback)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=addr), timeout=30)


def test_lifecycle_takes_effect_on_the_next_request(
    live_api: LiveAPI, make_user: Any, engine: Engine
) -> None:
    url = live_api.url
    rev = make_user("rev1", "reviewer")
    me = f"{url}/api/v1/me"
    assert httpx.get(me, headers=_bearer(rev)).json()["name"] == "rev1"

    # The streaming cookie (review page) is bound to the token it was traded for.
    c = httpx.Client(base_url=url)
    assert c.post("/api/v1/session", headers=_bearer(rev)).status_code == 204
    assert "custody_view" in c.cookies
    assert c.get("/api/v1/media/00000000-0000-0000-0000-000000000000/poster").status_code == 404  # let in

    with session_scope(engine) as s:
        accounts.disable_user(s, "rev1", reason="suspended")
    r = httpx.get(me, headers=_bearer(rev))
    assert (r.status_code, r.json()["code"]) == (401, "auth.account_disabled")
    assert c.get("/api/v1/media/00000000-0000-0000-0000-000000000000/poster").status_code == 401
    with session_scope(engine) as s:
        accounts.enable_user(s, "rev1")
    assert httpx.get(me, headers=_bearer(rev)).status_code == 200

    with session_scope(engine) as s:
        _u, new = accounts.rotate_token(s, "rev1", reason="leaked")
    r = httpx.get(me, headers=_bearer(rev))
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    assert c.get("/api/v1/media/00000000-0000-0000-0000-000000000000/poster").status_code == 401
    assert httpx.get(me, headers=_bearer(new)).status_code == 200

    # A role change widens nothing by itself and applies on the next request.
    checkpoints = f"{url}/api/v1/audit/checkpoints"
    assert httpx.get(checkpoints, headers=_bearer(new)).status_code == 403
    with session_scope(engine) as s:
        accounts.set_role(s, "rev1", accounts.Role.AUDITOR, reason="inspection duty")
    assert httpx.get(checkpoints, headers=_bearer(new)).status_code == 200
    assert httpx.get(me, headers=_bearer(new)).json()["role"] == "auditor"

    # Expiry: a token issued longer ago than token_ttl_days (90) fails, naming the remedy.
    with session_scope(engine) as s:
        s.execute(
            text("UPDATE users SET token_issued_at = :t WHERE name = 'rev1'"),
            {"t": datetime.now(UTC) - timedelta(days=91)},
        )
    r = httpx.get(me, headers=_bearer(new))
    assert (r.status_code, r.json()["code"]) == (401, "auth.token_expired")
    assert "custody users rotate" in r.json()["detail"]

    # Last use is kept (at most once a minute) for `custody users list`.
    with Session(engine) as s:
        assert s.exec(select(User).where(User.name == "rev1")).one().last_seen_at is not None


def test_logout_for_every_role_and_sessions_idle_or_too_old(
    live_api: LiveAPI, make_user: Any, engine: Engine
) -> None:
    url = live_api.url
    logout = f"{url}/api/v1/logout"
    for role in ROLES:
        name = f"u-{role}"
        api_token = make_user(name, role)
        token = _session_for(engine, name)
        assert httpx.get(f"{url}/api/v1/me", headers=_bearer(token)).json()["role"] == role
        r = httpx.post(logout, headers=_bearer(token))
        assert r.status_code == 200 and r.json()["ended"] is True, (role, r.text)
        r = httpx.get(f"{url}/api/v1/me", headers=_bearer(token))
        assert (r.status_code, r.json()["code"]) == (401, "auth.session_ended"), role
        # An API token is not a page session: 409 naming the way to revoke it; it keeps working.
        r = httpx.post(logout, headers=_bearer(api_token))
        assert (r.status_code, r.json()["code"]) == (409, "session.not_a_session"), role
        assert httpx.get(f"{url}/api/v1/me", headers=_bearer(api_token)).status_code == 200
    anonymous = httpx.post(logout)
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")
    assert len(_events(engine, "session.logout")) == len(ROLES)

    # Idle for longer than session_idle_s, or older than session_max_s: 401, sign in again.
    idle, old = _session_for(engine, "u-reviewer"), _session_for(engine, "u-auditor")
    with session_scope(engine) as s:
        s.execute(
            text("UPDATE user_sessions SET last_seen_at = :t WHERE token_hash = :h"),
            {"t": datetime.now(UTC) - timedelta(hours=1), "h": accounts.hash_token(idle)},
        )
        s.execute(
            text("UPDATE user_sessions SET expires_at = :t WHERE token_hash = :h"),
            {"t": datetime.now(UTC) - timedelta(seconds=1), "h": accounts.hash_token(old)},
        )
    assert httpx.get(f"{url}/api/v1/me", headers=_bearer(idle)).json()["code"] == "auth.session_idle"
    assert httpx.get(f"{url}/api/v1/me", headers=_bearer(old)).json()["code"] == "auth.session_expired"

    # Logging out drops the page's streaming cookie too.
    token = _session_for(engine, "u-reviewer")
    c = httpx.Client(base_url=url)
    assert c.post("/api/v1/session", headers=_bearer(token)).status_code == 204
    probe = "/api/v1/media/00000000-0000-0000-0000-000000000000/poster"
    assert c.get(probe).status_code == 404
    cookie = c.cookies["custody_view"]
    assert c.post("/api/v1/logout", headers=_bearer(token)).status_code == 200
    assert httpx.get(url + probe, cookies={"custody_view": cookie}).status_code == 401


def test_bad_token_flood_is_throttled_and_logged_once(
    env: dict[str, str], tmp_path: Path, make_user: Any, engine: Engine
) -> None:
    """The issue's 300 bad tokens in 2 s: at most the limit's worth of auth.denied rows, then 429 with
    Retry-After and one auth.throttled row; other addresses and other accounts unaffected."""
    port = free_port()
    api = LiveAPI(
        f"http://127.0.0.1:{port}",
        port,
        {
            **env,
            "CUSTODY_AUTH_FAIL_WINDOW_S": "120",
            "CUSTODY_AUTH_FAIL_MAX_PER_ADDR": "20",  # the defaults (conftest raises them for other tests)
            "CUSTODY_AUTH_FAIL_MAX_PER_ACCOUNT": "10",
        },
        tmp_path,
    )
    api.start()
    try:
        good = make_user("rev1", "reviewer")
        other = make_user("rev2", "reviewer")
        me = f"{api.url}/api/v1/me"
        flood = _from("127.0.0.5")

        def bad(i: int) -> httpx.Response:
            return flood.get(me, headers=_bearer(f"cus_not-a-token-{i}"))

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(bad, range(300)))
        codes = [r.status_code for r in answers]
        assert set(codes) == {401, 429} and codes.count(401) == 20, codes.count(401)
        throttled = [r for r in answers if r.status_code == 429]
        assert all(1 <= int(r.headers["Retry-After"]) <= 120 for r in throttled)
        assert throttled[0].json()["code"] == "auth.throttled_addr"
        denied = [e for e in _events(engine, "auth.denied") if e.client_addr == "127.0.0.5"]
        assert len(denied) == 20
        once = _events(engine, "auth.throttled")
        assert len(once) == 1 and (once[0].subject_type, once[0].subject_id) == ("client_addr", "127.0.0.5")
        assert once[0].details["failures"] >= 20

        # From the throttled address even a correct token waits; from any other it works.
        r = flood.get(me, headers=_bearer(good))
        assert r.status_code == 429 and "Retry-After" in r.headers
        assert _from("127.0.0.6").get(me, headers=_bearer(good)).status_code == 200
        assert len(_events(engine, "auth.throttled")) == 1  # still one for this window

        # Per account: an ended session of rev1 tried from several addresses counts against rev1.
        ended = _session_for(engine, "rev1")
        with session_scope(engine) as s:
            user = s.exec(select(User).where(User.name == "rev1")).one()
            accounts.end_session(s, accounts.Principal(user, _session_id(engine, ended)))
        for i in range(10):
            r = _from(f"127.0.1.{i + 1}").get(me, headers=_bearer(ended))
            assert r.json()["code"] == "auth.session_ended"
        r = _from("127.0.2.1").get(me, headers=_bearer(good))
        assert (r.status_code, r.json()["code"]) == (429, "auth.throttled_account")
        assert _from("127.0.2.1").get(me, headers=_bearer(other)).status_code == 200
        acct = [e for e in _events(engine, "auth.throttled") if e.subject_type == "user"]
        assert [(e.subject_id, e.actor) for e in acct] == [("rev1", "user:rev1")]
    finally:
        api.stop()


def _session_id(engine: Engine, token: str) -> str:
    with Session(engine) as s:
        row = s.execute(
            text("SELECT id FROM user_sessions WHERE token_hash = :h"), {"h": accounts.hash_token(token)}
        ).one()
        return str(row[0])

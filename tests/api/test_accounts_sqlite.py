"""Accounts with a lifecycle on the embedded default: migration 0012 over an existing SQLite database
(an old token gets a full lifetime from the upgrade), then the real API on that file: disable, rotate,
page sessions and logout, and the throttle (Redis runs in every profile)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import Session, select

from archive.accounts import services as accounts
from archive.accounts.models import SessionVia, User
from archive.config import get_settings
from archive.db import make_engine, session_scope
from migrations import alembic_config, migrate
from tests.conftest import LiveAPI, free_port


def test_accounts_on_sqlite(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'custody.db'}"
    monkeypatch.setenv("CUSTODY_DATABASE_URL", url)
    get_settings.cache_clear()
    # A database from before accounts had a lifecycle, with a user made two years ago.
    command.upgrade(alembic_config(url), "0010_i18n")
    engine = make_engine(url)
    old_token = "cus_an-old-token-from-2024"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (name, role, token_hash, disabled, created_at) "
                "VALUES ('old', 'reviewer', :h, false, :t)"
            ),
            {"h": accounts.hash_token(old_token), "t": datetime.now(UTC) - timedelta(days=730)},
        )
    migrate(get_settings())
    with Session(engine) as s:
        old = s.exec(select(User).where(User.name == "old")).one()
        assert old.token_issued_at is not None
        assert datetime.now(UTC) - old.token_issued_at.replace(tzinfo=UTC) < timedelta(hours=1)

    with session_scope(engine) as s:
        rev = accounts.add_user(s, "rev1", accounts.Role.REVIEWER)[1]
        user = s.exec(select(User).where(User.name == "rev1")).one()
        page = accounts.start_session(s, user, via=SessionVia.OIDC)[1]
    port = free_port()
    limits = {"CUSTODY_AUTH_FAIL_MAX_PER_ADDR": "5", "CUSTODY_AUTH_FAIL_WINDOW_S": "60"}
    api = LiveAPI(f"http://127.0.0.1:{port}", port, {**env, "CUSTODY_DATABASE_URL": url, **limits}, tmp_path)
    api.start()
    try:
        me = f"{api.url}/api/v1/me"

        def get(token: str, addr: str = "127.0.0.1") -> Any:
            with httpx.Client(transport=httpx.HTTPTransport(local_address=addr)) as c:
                return c.get(me, headers={"Authorization": f"Bearer {token}"})

        assert get(old_token).json()["name"] == "old"  # still works after the upgrade
        assert get(page).json()["name"] == "rev1"
        assert (
            httpx.post(f"{api.url}/api/v1/logout", headers={"Authorization": f"Bearer {page}"}).status_code
            == 200
        )
        assert get(page).json()["code"] == "auth.session_ended"
        with session_scope(engine) as s:
            accounts.disable_user(s, "rev1", reason="suspended")
        assert get(rev).json()["code"] == "auth.account_disabled"
        with session_scope(engine) as s:
            accounts.enable_user(s, "rev1")
            new = accounts.rotate_token(s, "rev1")[1]
        assert get(rev).status_code == 401 and get(new).status_code == 200
        # The throttle: 5 failures from one address, then 429 even for a good token; others go on.
        for i in range(5):
            assert get(f"cus_bad-{i}", "127.0.0.9").status_code == 401
        r = get(new, "127.0.0.9")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert get(new, "127.0.0.10").status_code == 200
    finally:
        api.stop()
        engine.dispose()

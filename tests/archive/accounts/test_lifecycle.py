"""Accounts with a lifecycle (issue 10, finding 5), in the domain: disable, enable, rotate, role,
token expiry, page sessions; each change a custody-log event; refusals name what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive.accounts import services as accounts
from archive.accounts.errors import AuthFailed, UserInputInvalid, UserNotFound
from archive.accounts.models import Role, SessionVia, User, UserSession
from archive.config import get_settings
from archive.db import session_scope
from archive.errors import Conflict, Forbidden
from archive.models import Event


def _events(engine: Engine, action: str) -> list[Event]:
    with Session(engine) as s:
        return list(s.exec(select(Event).where(Event.action == action).order_by(col(Event.id))))


def _auth(engine: Engine, token: str, at: datetime | None = None) -> accounts.Principal:
    with session_scope(engine) as s:
        clock = (lambda: at) if at else accounts.utcnow
        p = accounts.authenticate_principal(s, token, clock=clock)
        if p.seen_due:  # as the API does, after authenticating
            accounts.record_use(s, p, clock=clock)
        s.flush()
        s.expunge_all()
        return p


def _refused(engine: Engine, token: str, at: datetime | None = None) -> AuthFailed:
    with pytest.raises(AuthFailed) as info:
        _auth(engine, token, at)
    return info.value


def test_disable_enable_rotate_role_each_logged_and_at_once(engine: Engine, make_user: Any) -> None:
    token = make_user("rev1", "reviewer")
    admin_token = make_user("root", "admin")
    assert _auth(engine, token).user.name == "rev1"

    with session_scope(engine) as s:
        accounts.disable_user(s, "rev1", reason="left the unit")
    err = _refused(engine, token)
    assert (err.error_code, err.account) == ("auth.account_disabled", "rev1")
    with session_scope(engine) as s, pytest.raises(Conflict) as again:
        accounts.disable_user(s, "rev1", reason="twice")
    assert again.value.error_code == "user.already_disabled"

    with session_scope(engine) as s:
        accounts.enable_user(s, "rev1", reason="came back")
    assert _auth(engine, token).user.name == "rev1"

    with session_scope(engine) as s:
        _user, new = accounts.rotate_token(s, "rev1", reason="token seen on a screen")
    old = _refused(engine, token)
    assert (old.error_code, old.account) == ("unauthorized", None)  # the old token is simply unknown now
    assert _auth(engine, new).user.name == "rev1"

    with session_scope(engine) as s:
        accounts.set_role(s, "rev1", Role.AUDITOR, reason="moved to inspection")
    assert _auth(engine, new).user.role is Role.AUDITOR

    # Each change is an event with who, what and why; the token never appears.
    assert [e.details["reason"] for e in _events(engine, "user.disable")] == ["left the unit"]
    assert [e.details["reason"] for e in _events(engine, "user.enable")] == ["came back"]
    rotated = _events(engine, "user.token_rotate")
    assert len(rotated) == 1 and rotated[0].actor == "system:cli" and new not in str(rotated[0].details)
    role = _events(engine, "user.role")[0]
    assert role.details == {"before": "reviewer", "after": "auditor", "reason": "moved to inspection"}

    # Bad input: a clear refusal naming the problem, nothing changed.
    with session_scope(engine) as s:
        with pytest.raises(UserNotFound):
            accounts.disable_user(s, "nobody", reason="x")
        with pytest.raises(UserInputInvalid) as no_reason:
            accounts.set_role(s, "rev1", Role.ADMIN, reason="  ")
        assert no_reason.value.error_code == "user.reason_required"
        with pytest.raises(Conflict) as same:
            accounts.set_role(s, "rev1", Role.AUDITOR, reason="again")
        assert same.value.error_code == "user.same_role"

    # Acting as an account (the CLI's --as): only an administrator, never on their own account.
    with session_scope(engine) as s:
        root = s.exec(select(User).where(User.name == "root")).one()
        rev1 = s.exec(select(User).where(User.name == "rev1")).one()
        with pytest.raises(Forbidden):
            accounts.disable_user(s, "root", reason="x", by=rev1)
        with pytest.raises(Forbidden) as own:
            accounts.set_role(s, "root", Role.OFFICER, reason="x", by=root)
        assert own.value.error_code == "user.self_change"
        accounts.disable_user(s, "rev1", reason="by the admin", by=root)
    assert _events(engine, "user.disable")[-1].actor == "user:root"
    assert admin_token  # still works
    assert _auth(engine, admin_token).user.name == "root"


def test_token_expiry_is_configurable(
    engine: Engine, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make_user("0815", "officer")
    issued = _auth(engine, token).user.token_issued_at
    assert issued is not None
    ttl = get_settings().token_ttl_days
    assert ttl == 90
    later = datetime.now(UTC) + timedelta(days=ttl, minutes=1)
    err = _refused(engine, token, at=later)
    assert (err.error_code, err.account) == ("auth.token_expired", "0815")
    assert "custody users rotate" in str(err)
    with session_scope(engine) as s:
        (row,) = [u for u in accounts.list_users(s, clock=lambda: later) if u.name == "0815"]
    assert row.token_expired and row.token_expires_at is not None

    monkeypatch.setenv("CUSTODY_TOKEN_TTL_DAYS", "0")  # never
    get_settings.cache_clear()
    assert _auth(engine, token, at=later).user.name == "0815"


def test_page_sessions_idle_lifetime_logout_and_revocation(engine: Engine, make_user: Any) -> None:
    make_user("rev1", "reviewer")
    s_ = get_settings()
    t0 = datetime.now(UTC)
    with session_scope(engine) as s:
        user = s.exec(select(User).where(User.name == "rev1")).one()
        row, token = accounts.start_session(
            s, user, via=SessionVia.OIDC, client_addr="10.1.2.3", clock=lambda: t0
        )
        session_id = row.id
    assert token.startswith("cps_")
    login = _events(engine, "session.login")[0]
    assert login.details["session"] == session_id and token not in str(login.details)

    p = _auth(engine, token, at=t0 + timedelta(seconds=30))
    assert (p.user.name, p.session_id, p.credential) == ("rev1", session_id, f"session:{session_id}")
    # Activity keeps it open; idleness or its longest lifetime ends it.
    at = t0
    while at < t0 + timedelta(seconds=s_.session_idle_s * 2):
        at += timedelta(seconds=s_.session_idle_s // 2)
        _auth(engine, token, at=at)
    idle = _refused(engine, token, at=at + timedelta(seconds=s_.session_idle_s + 1))
    assert (idle.error_code, idle.account) == ("auth.session_idle", "rev1")
    old = _refused(engine, token, at=t0 + timedelta(seconds=s_.session_max_s))
    assert old.error_code == "auth.session_expired"

    # Logout ends it at once; an API token is not a session.
    principal = _auth(engine, token, at=at)
    with session_scope(engine) as s:
        accounts.end_session(s, principal, client_addr="10.1.2.3")
    assert _refused(engine, token).error_code == "auth.session_ended"
    assert _events(engine, "session.logout")[0].details == {"session": session_id}

    # Disabling and rotating end every open session of the user.
    for change in ("disable", "rotate"):
        with session_scope(engine) as s:
            user = s.exec(select(User).where(User.name == "rev1")).one()
            _row, token = accounts.start_session(s, user, via=SessionVia.OIDC)
        if change == "disable":
            with session_scope(engine) as s:
                accounts.disable_user(s, "rev1", reason="suspended")
                accounts.enable_user(s, "rev1")
        else:
            with session_scope(engine) as s:
                accounts.rotate_token(s, "rev1")
        assert _refused(engine, token).error_code == "auth.session_ended"
    with Session(engine) as s:
        reasons = sorted(r.end_reason or "" for r in s.exec(select(UserSession)).all())
    assert reasons == ["disabled", "logout", "token rotated"]


def test_streaming_cookie_credential_follows_revocation(engine: Engine, make_user: Any) -> None:
    token = make_user("rev1", "reviewer")
    cred = _auth(engine, token).credential
    with session_scope(engine) as s:
        assert accounts.check_credential(s, "rev1", cred) is not None
        assert accounts.check_credential(s, "rev1", "") is None  # a cookie from before: reload
        assert accounts.check_credential(s, "other", cred) is None
    with session_scope(engine) as s:
        accounts.rotate_token(s, "rev1")
    with session_scope(engine) as s:
        assert accounts.check_credential(s, "rev1", cred) is None

"""Single sign-on for the pages (issue 10, finding 5): OpenID Connect against a real provider started
here (tests/oidc_provider.py: Authlib's authorization server, PKCE, signed ID tokens), the whole
redirect flow driven with an HTTP client as a browser would: every role signs in to an enabled
account; unknown and disabled accounts are refused (403, logged); an answer with a wrong state,
nonce, issuer, audience, signature or lifetime is refused (401)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive.accounts import services as accounts
from archive.db import session_scope
from archive.models import Event
from tests.conftest import LiveAPI, Proc, _spawn, free_port

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
SECRET = "provider-client-secret-0123456789"


@dataclass
class World:
    api: LiveAPI
    idp: str

    def mode(self, mode: str) -> None:
        httpx.post(f"{self.idp}/_test/mode", json={"mode": mode}).raise_for_status()


@pytest.fixture
def world(env: dict[str, str], tmp_path: Path) -> Iterator[World]:
    api_port, idp_port = free_port(), free_port()
    api_url, idp = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{idp_port}"
    users = [f"u-{r}:pw-{r}" for r in ROLES] + ["stranger:pw", "gone:pw"]
    provider: Proc = _spawn(
        [
            sys.executable, "-m", "tests.oidc_provider", "--port", str(idp_port), "--client-id", "custody",
            "--client-secret", SECRET, "--redirect-uri", f"{api_url}/auth/oidc/callback",
            *[a for u in users for a in ("--user", u)],
        ],
        {},
        tmp_path / "idp.log",
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{idp}/.well-known/openid-configuration", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        provider.stop()
        raise RuntimeError(provider.tail())
    api_env = {
        **env,
        "CUSTODY_OIDC_ISSUER": idp,
        "CUSTODY_OIDC_CLIENT_ID": "custody",
        "CUSTODY_OIDC_CLIENT_SECRET": SECRET,
    }
    api = LiveAPI(api_url, api_port, api_env, tmp_path)
    api.start()
    try:
        yield World(api, idp)
    finally:
        api.stop()
        provider.stop()


def _events(engine: Engine, action: str) -> list[Event]:
    with Session(engine) as s:
        return list(s.exec(select(Event).where(Event.action == action).order_by(col(Event.id))))


def sign_in(w: World, user: str, password: str, next_path: str = "/cases/C-1") -> tuple[httpx.Client, str]:
    """The browser: to the archive, redirected to the provider, log in there, back with a code.
    Returns the browser and the callback URL it is sent to (not yet followed)."""
    browser = httpx.Client(base_url=w.api.url, follow_redirects=False, timeout=30)
    r = browser.get("/auth/oidc/login", params={"next": next_path})
    assert r.status_code == 302, r.text
    authorize = r.headers["location"]
    assert authorize.startswith(f"{w.idp}/authorize?")
    q = parse_qs(urlsplit(authorize).query)
    assert q["code_challenge_method"] == ["S256"] and q["nonce"] and q["state"]
    assert httpx.get(authorize).status_code == 200  # the provider's login form
    r = httpx.post(authorize, data={"username": user, "password": password})
    assert r.status_code == 302, r.text
    callback = r.headers["location"]
    assert callback.startswith(f"{w.api.url}/auth/oidc/callback?")
    return browser, callback


def finish(browser: httpx.Client, callback: str) -> httpx.Response:
    return browser.get(callback)


def token_of(answer: httpx.Response) -> tuple[str, str]:
    assert answer.status_code == 303, answer.text
    path, _sep, fragment = answer.headers["location"].partition("#")
    assert fragment.startswith("token=cps_")
    return path, fragment.removeprefix("token=")


def test_every_role_signs_in_and_out(world: World, make_user: Any, engine: Engine) -> None:
    for role in ROLES:
        make_user(f"u-{role}", role)
    for role in ROLES:
        browser, callback = sign_in(world, f"u-{role}", f"pw-{role}")
        path, token = token_of(finish(browser, callback))
        assert path == "/cases/C-1"
        me = httpx.get(f"{world.api.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert (me.status_code, me.json()["name"], me.json()["role"]) == (200, f"u-{role}", role)
        # The page's streaming cookie works from the session too, and logout ends both.
        assert (
            browser.post("/api/v1/session", headers={"Authorization": f"Bearer {token}"}).status_code == 204
        )
        out = httpx.post(f"{world.api.url}/api/v1/logout", headers={"Authorization": f"Bearer {token}"})
        assert out.status_code == 200
        again = httpx.get(f"{world.api.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert (again.status_code, again.json()["code"]) == (401, "auth.session_ended")
    logins = _events(engine, "session.login")
    assert [e.actor for e in logins] == [f"user:u-{r}" for r in ROLES]
    first = logins[0].details
    assert first["via"] == "oidc" and first["issuer"] == world.idp and first["subject"]
    assert (first["acr"], first["amr"]) == ("mfa", "pwd,otp")  # the agency's multi-factor login, recorded
    assert len(_events(engine, "session.logout")) == len(ROLES)


def test_unknown_and_disabled_accounts_are_refused(world: World, make_user: Any, engine: Engine) -> None:
    make_user("gone", "reviewer")
    with session_scope(engine) as s:
        accounts.disable_user(s, "gone", reason="left")
    for user, code in (("stranger", "auth.sso_unknown_user"), ("gone", "auth.sso_account_disabled")):
        browser, callback = sign_in(world, user, "pw")
        r = finish(browser, callback)
        assert (r.status_code, r.json()["code"]) == (403, code)
        assert "token=" not in r.headers.get("location", "")
    refused = _events(engine, "auth.sso_refused")
    assert [(e.subject_id, e.outcome, e.details["issuer"]) for e in refused] == [
        ("stranger", "denied", world.idp),
        ("gone", "denied", world.idp),
    ]
    assert not _events(engine, "session.login")


UNTRUSTWORTHY = [
    ("wrong-nonce", "auth.sso_nonce"),
    ("wrong-audience", "auth.sso_audience"),
    ("wrong-issuer", "auth.sso_issuer"),
    ("foreign-key", "auth.sso_signature"),
    ("expired", "auth.sso_expired"),
    ("no-username", "auth.sso_claim"),
]


def test_an_untrustworthy_id_token_is_refused(world: World, make_user: Any, engine: Engine) -> None:
    """One provider and API for every kind of bad answer (each a mode of the provider)."""
    make_user("u-reviewer", "reviewer")
    for mode, code in UNTRUSTWORTHY:
        world.mode(mode)
        browser, callback = sign_in(world, "u-reviewer", "pw-reviewer")
        r = finish(browser, callback)
        assert (r.status_code, r.json()["code"]) == (401, code), (mode, r.text)
        denied = _events(engine, "auth.denied")
        assert denied[-1].details["request"] == "GET /auth/oidc/callback"
    assert not _events(engine, "session.login")
    world.mode("")
    token_of(finish(*sign_in(world, "u-reviewer", "pw-reviewer")))  # a good answer still works


def test_state_is_one_use_bound_to_the_browser_and_next_stays_here(
    world: World, make_user: Any, engine: Engine
) -> None:
    make_user("u-reviewer", "reviewer")
    # A forged state.
    browser, callback = sign_in(world, "u-reviewer", "pw-reviewer")
    parts = urlsplit(callback)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    forged = f"{world.api.url}/auth/oidc/callback?" + urlencode({**q, "state": "forged-state"})
    r = finish(browser, forged)
    assert (r.status_code, r.json()["code"]) == (401, "auth.sso_state")
    # The real state, but in another browser (login CSRF: someone else's code pushed into ours).
    other = httpx.Client(follow_redirects=False)
    r = other.get(callback)
    assert (r.status_code, r.json()["code"]) == (401, "auth.sso_state")
    # The state was used by that attempt: even the right browser cannot use it now.
    assert finish(browser, callback).json()["code"] == "auth.sso_state"
    # A fresh sign-in works once; replaying its answer does not.
    browser, callback = sign_in(world, "u-reviewer", "pw-reviewer", next_path="//evil.example/x")
    path, _token = token_of(finish(browser, callback))
    assert path == "/"  # never another site
    assert finish(browser, callback).json()["code"] == "auth.sso_state"
    # The provider's own refusal (error=access_denied) is a refusal here too.
    r = httpx.get(f"{world.api.url}/auth/oidc/callback", params={"error": "access_denied", "state": "x"})
    assert (r.status_code, r.json()["code"]) == (401, "auth.sso_provider_error")
    assert len(_events(engine, "session.login")) == 1


def test_single_sign_on_off_is_404(live_api: LiveAPI) -> None:
    r = httpx.get(f"{live_api.url}/auth/oidc/login", follow_redirects=False)
    assert (r.status_code, r.json()["code"]) == (404, "auth.sso_off")

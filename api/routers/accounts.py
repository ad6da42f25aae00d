"""Accounts over HTTP: logout, and single sign-on for the pages (OpenID Connect).

- ``POST /api/v1/logout``: the page session of the request ends at once (any role; an API token is
  not a session: 409 ``session.not_a_session``), and the review page's streaming cookie with it.
- ``GET /auth/oidc/login?next=/cases/ID``: sends the browser to the agency's identity provider.
- ``GET /auth/oidc/callback``: the provider sends it back; once the answer is verified
  (archive/accounts/oidc.py) and names an enabled user, a page session begins and the browser goes
  to ``next`` with the session's token in the fragment (``#token=cps_...``), which the pages read
  into sessionStorage and drop from the address bar, as they do with a pasted token. A fragment is
  never sent to a server, so the token reaches no log.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel

from api import viewsession
from api.deps import (
    ClientAddr,
    CurrentPrincipal,
    SessionDep,
    client_addr,
    count_failure,
    get_context,
    refuse_if_throttled,
)
from archive.accounts import oidc
from archive.accounts import services as accounts
from archive.accounts.errors import SignInFailed, SignInRefused
from archive.config import get_settings
from archive.db import session_scope
from archive.i18n import _

router = APIRouter(prefix="/api/v1", tags=["accounts"])
sso = APIRouter(prefix="/auth/oidc", tags=["accounts"])
SSO_COOKIE = "custody_sso"
SSO_COOKIE_PATH = "/auth/oidc"


class LogoutOut(BaseModel):
    ended: bool
    session: str


@router.post("/logout", response_model=LogoutOut)
def logout(
    response: Response, session: SessionDep, principal: CurrentPrincipal, addr: ClientAddr
) -> LogoutOut:
    """End this page session at once (logged as session.logout); the next request with its token gets
    401. Any role. With an API token: 409 (revoke one with ``custody users rotate``)."""
    row = accounts.end_session(session, principal, client_addr=addr)
    response.delete_cookie(viewsession.COOKIE, path=viewsession.COOKIE_PATH)
    return LogoutOut(ended=True, session=row.id)


@sso.get("/login", include_in_schema=True)
def sso_login(request: Request, next: str = Query("/", max_length=500)) -> RedirectResponse:
    """Begin a single sign-on: to the identity provider, and back to ``next`` (a path here)."""
    refuse_if_throttled(request)
    s = get_settings()
    provider = oidc.provider(s)
    redirect_uri = s.oidc_redirect_uri or str(request.url_for("sso_callback"))
    url, browser = provider.begin(request.app.state.redis, redirect_uri, next)
    answer = RedirectResponse(url, status_code=302)
    answer.set_cookie(
        SSO_COOKIE,
        browser,
        max_age=oidc.PENDING_TTL_S,
        path=SSO_COOKIE_PATH,
        httponly=True,
        samesite="lax",  # the provider's redirect back is a top-level navigation from another site
        secure=request.url.scheme == "https",
    )
    answer.headers["Cache-Control"] = "no-store"
    return answer


@sso.get("/callback", name="sso_callback")
def sso_callback(
    request: Request,
    session: SessionDep,
    code: str | None = Query(None, max_length=2000),
    state: str | None = Query(None, max_length=200),
    error: str | None = Query(None, max_length=200),
) -> Response:
    """The provider's answer: a page session for the enabled user it names (303 to the page), else
    401 (an answer we do not trust: state, nonce, issuer, audience, signature) or 403 (no enabled
    account of that name; logged as auth.sso_refused)."""
    refuse_if_throttled(request)
    addr = client_addr(request)
    provider = oidc.provider(get_settings())
    try:
        if error:
            raise SignInFailed(
                _("the identity provider refused the sign-in ({error})").format(error=error[:80]),
                code="auth.sso_provider_error",
            )
        pending = provider.take_pending(request.app.state.redis, state, request.cookies.get(SSO_COOKIE))
        identity = provider.finish(pending, code)
    except SignInFailed:
        count_failure(request, None)
        raise
    refuse_if_throttled(request, identity.username)
    try:
        _session_row, token, user = accounts.sso_sign_in(
            session, identity.username, identity=identity.summary(), client_addr=addr
        )
    except SignInRefused as exc:
        count_failure(request, identity.username)
        _record_refusal(request, identity, str(exc))
        body: dict[str, Any] = {"detail": str(exc), "code": exc.error_code}
        return JSONResponse(body, status_code=403, headers={"Cache-Control": "no-store"})
    request.state.user_name = user.name
    answer = RedirectResponse(f"{pending.next_path}#token={token}", status_code=303)
    answer.delete_cookie(SSO_COOKIE, path=SSO_COOKIE_PATH)
    answer.headers["Cache-Control"] = "no-store"
    answer.headers["Referrer-Policy"] = "no-referrer"
    return answer


def _record_refusal(request: Request, identity: oidc.Identity, reason: str) -> None:
    # Its own unit of work: the request's is left untouched by a refusal.
    with session_scope(get_context(request).engine) as log_session:
        accounts.record_sso_refusal(
            log_session,
            identity.username,
            reason,
            identity=identity.summary(),
            client_addr=client_addr(request),
        )

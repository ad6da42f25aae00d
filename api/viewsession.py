"""The review page's streaming cookie.

``<video>``, ``<audio>`` and ``<img>`` cannot send an Authorization header, and a bearer token in a
URL ends up in logs and browser history. So the page trades its token (sent as a header) for a
short-lived random cookie: HttpOnly (page scripts cannot read it), SameSite=Strict (no other site
can make the browser send it), Path=/api/v1/media (sent to nothing else), and accepted only by the
GET routes that stream proxies and posters. Redis keeps only the cookie's SHA-256, with a TTL.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated

import redis
from fastapi import Depends, Request

from api.deps import (
    SessionDep,
    authenticate_request,
    bearer_token,
    count_failure,
    refuse_if_throttled,
    use_principal,
)
from archive.accounts import services as accounts
from archive.accounts.models import User
from archive.errors import Unauthorized
from archive.i18n import _

COOKIE = "custody_view"
COOKIE_PATH = "/api/v1/media"
_PREFIX = "custody:view-session:"


def _key(value: str) -> str:
    return _PREFIX + hashlib.sha256(value.encode()).hexdigest()


def create(r: redis.Redis, user_name: str, ttl_s: int, credential: str = "") -> str:
    """A cookie value for ``user_name``, bound to the credential the page holds (its API token or
    page session): rotating the token, ending the session or disabling the account ends the cookie."""
    value = secrets.token_urlsafe(32)
    r.set(_key(value), f"{user_name}\n{credential}", ex=ttl_s)
    return value


def drop(r: redis.Redis, value: str) -> None:
    r.delete(_key(value))


def lookup(r: redis.Redis, value: str) -> tuple[str, str] | None:
    """The user name and credential a cookie was issued for."""
    raw = r.get(_key(value))
    if raw is None:
        return None
    name, _sep, credential = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition("\n")
    return name, credential


def viewer(request: Request, session: SessionDep) -> User:
    """The bearer token if there is one, else the streaming cookie (whose credential must still hold)."""
    if bearer_token(request) is not None or COOKIE not in request.cookies:
        return authenticate_request(request, session).user
    refuse_if_throttled(request)
    found = lookup(request.app.state.redis, request.cookies[COOKIE])
    principal = accounts.check_credential(session, *found) if found else None
    if principal is None:
        count_failure(request, found[0] if found else None)
        raise Unauthorized(_("the review session has expired: reload the page"))
    use_principal(request, principal)  # watching keeps the page session from going idle
    return principal.user


Viewer = Annotated[User, Depends(viewer)]

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

from api.deps import SessionDep, bearer_token, client_addr
from archive.accounts import services as accounts
from archive.accounts.models import User
from archive.errors import Unauthorized
from archive.i18n import _

COOKIE = "custody_view"
COOKIE_PATH = "/api/v1/media"
_PREFIX = "custody:view-session:"


def _key(value: str) -> str:
    return _PREFIX + hashlib.sha256(value.encode()).hexdigest()


def create(r: redis.Redis, user_name: str, ttl_s: int) -> str:
    value = secrets.token_urlsafe(32)
    r.set(_key(value), user_name, ex=ttl_s)
    return value


def drop(r: redis.Redis, value: str) -> None:
    r.delete(_key(value))


def lookup(r: redis.Redis, value: str) -> str | None:
    name = r.get(_key(value))
    return name.decode() if isinstance(name, bytes) else name


def viewer(request: Request, session: SessionDep) -> User:
    """The bearer token if there is one, else the streaming cookie."""
    if bearer_token(request) is not None or COOKIE not in request.cookies:
        user = accounts.authenticate(session, bearer_token(request), client_addr=client_addr(request))
    else:
        name = lookup(request.app.state.redis, request.cookies[COOKIE])
        found = accounts.active_user(session, name) if name else None
        if found is None:
            raise Unauthorized(_("the review session has expired: reload the page"))
        user = found
    request.state.user_name = user.name
    return user


Viewer = Annotated[User, Depends(viewer)]

"""Request dependencies: database session, current user, collaborators, client address."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import redis
from fastapi import Depends, Request
from sqlmodel import Session

from archive import i18n
from archive.accounts import services as accounts
from archive.accounts.errors import AuthFailed
from archive.accounts.models import User
from archive.accounts.services import Principal
from archive.accounts.throttle import Limits, Throttle
from archive.config import get_settings
from archive.context import Context, Dispatcher
from archive.db import session_scope
from archive.errors import TooManyAttempts
from archive.i18n import _
from archive.signing import Keyring
from archive.storage import ObjectStore


def get_context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


ContextDep = Annotated[Context, Depends(get_context)]


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: commit once at the end (then what services handed to
    ``archive.db.after_commit`` runs, e.g. sending tasks), roll back on error."""
    with session_scope(get_context(request).engine) as session:
        yield session


# scope="function": the unit of work commits before the response is sent, so a client never gets a
# 2xx for a change whose commit then fails, and its next request always sees what it just wrote.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def client_addr(request: Request) -> str:
    return request.client.host if request.client else ""


ClientAddr = Annotated[str, Depends(client_addr)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _sep, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def get_throttle(request: Request) -> Throttle:
    throttle: Throttle | None = getattr(request.app.state, "auth_throttle", None)
    if throttle is None:  # built by the lifespan; an app without one (a test's) gets one here
        throttle = request.app.state.auth_throttle = make_throttle(request.app.state.redis)
    return throttle


def make_throttle(r: redis.Redis) -> Throttle:
    s = get_settings()
    return Throttle(r, Limits(s.auth_fail_window_s, s.auth_fail_max_per_addr, s.auth_fail_max_per_account))


def refuse_if_throttled(request: Request, account: str | None = None) -> None:
    """429 with Retry-After while this client address (or account) is over its failure limit; the
    first refusal of each window goes to the custody log (``auth.throttled``), later ones do not."""
    throttle = get_throttle(request)
    addr = client_addr(request)
    blocked = throttle.blocked(addr, account)
    if blocked is None:
        return
    if throttle.first_refusal(blocked):
        with session_scope(get_context(request).engine) as log_session:
            accounts.record_throttled(
                log_session,
                blocked.kind,
                blocked.key,
                failures=blocked.failures,
                retry_after=blocked.retry_after,
                request=f"{request.method} {request.url.path}",
                client_addr=addr,
            )
    request.state.quiet_denial = True
    if blocked.kind == "account":
        message = _("too many failed sign-ins for this account; try again in {seconds} s")
    else:
        message = _("too many failed sign-ins from this address; try again in {seconds} s")
    raise TooManyAttempts(
        message.format(seconds=blocked.retry_after),
        retry_after=blocked.retry_after,
        code=f"auth.throttled_{blocked.kind}",
    )


def count_failure(request: Request, account: str | None) -> None:
    """One failed authentication from this request's address (and against ``account``). A failure
    past the limit (a request that raced the check) is answered 429 like those after it."""
    if not get_throttle(request).failed(client_addr(request), account):
        request.state.quiet_denial = True
        refuse_if_throttled(request, account)


def authenticate_request(request: Request, session: Session) -> Principal:
    """The request's bearer token (an API token or a page session), checked afresh, throttled."""
    refuse_if_throttled(request)
    try:
        principal = accounts.authenticate_principal(
            session, bearer_token(request), client_addr=client_addr(request)
        )
    except AuthFailed as exc:
        count_failure(request, exc.account)
        raise
    refuse_if_throttled(request, principal.user.name)
    use_principal(request, principal)
    return principal


def use_principal(request: Request, principal: Principal) -> None:
    # The name, not the row: the row expires when a failed request's session rolls back.
    request.state.user_name = principal.user.name
    request.state.credential = principal.credential
    request.state.session_id = principal.session_id
    if principal.seen_due:  # its own short transaction: the request's may last long (an upload)
        with session_scope(get_context(request).engine) as seen:
            accounts.record_use(seen, principal)


def current_principal(request: Request, session: SessionDep) -> Principal:
    principal = authenticate_request(request, session)
    user = principal.user
    if user.language:  # the user's own setting before the browser's Accept-Language (api/i18n.py)
        i18n.set_language(user.language)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def current_user(principal: CurrentPrincipal) -> User:
    return principal.user


CurrentUser = Annotated[User, Depends(current_user)]


def get_store(request: Request) -> ObjectStore:
    return get_context(request).store


StoreDep = Annotated[ObjectStore, Depends(get_store)]


def get_keyring(request: Request) -> Keyring:
    return get_context(request).keyring


KeyringDep = Annotated[Keyring, Depends(get_keyring)]


def get_dispatcher(request: Request) -> Dispatcher:
    return get_context(request).dispatcher


DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]

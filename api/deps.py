"""Request dependencies: database session, current user, collaborators, client address."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from archive import i18n
from archive.accounts import services as accounts
from archive.accounts.models import User
from archive.context import Context, Dispatcher
from archive.db import session_scope
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
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_user(request: Request, session: SessionDep) -> User:
    user = accounts.authenticate(session, bearer_token(request), client_addr=client_addr(request))
    # The name, not the row: the row expires when a failed request's session rolls back.
    request.state.user_name = user.name
    if user.language:  # the user's own setting before the browser's Accept-Language (api/i18n.py)
        i18n.set_language(user.language)
    return user


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

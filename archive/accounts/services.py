"""Accounts and bearer tokens. Tokens are 256-bit random strings; only their SHA-256 is stored,
so a copy of the database does not let anyone act as a user."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlmodel import Session, select

from archive import events, i18n
from archive.access import actor
from archive.accounts.models import Officer, Role, User
from archive.errors import Conflict, InvalidInput, Unauthorized
from archive.i18n import _
from archive.models import Outcome

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

# What each role may do is said once, in archive.access (Permission, ROLE_PERMISSIONS).


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_user(session: Session, name: str, role: Role, *, actor: str = "system:cli") -> tuple[User, str]:
    """Create a user and return it with its token (shown once, never stored)."""
    if not _NAME.match(name):
        raise InvalidInput(
            _("user name: 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
        )
    if session.exec(select(User).where(User.name == name)).first():
        raise Conflict(_("user {name!r} already exists").format(name=name))
    token = "cus_" + secrets.token_urlsafe(32)
    user = User(name=name, role=role, token_hash=hash_token(token))
    session.add(user)
    if role is Role.OFFICER and session.get(Officer, name) is None:
        # An officer account is named by the officer's badge number.
        session.add(Officer(badge=name, name=name))
    session.flush()
    events.record(
        session,
        actor=actor,
        action="user.create",
        subject_type="user",
        subject_id=name,
        details={"role": role},
    )
    return user, token


def authenticate(session: Session, token: str | None, *, client_addr: str = "") -> User:
    if not token:
        raise Unauthorized(_("missing bearer token (Authorization: Bearer <token>)"))
    user = session.exec(select(User).where(User.token_hash == hash_token(token))).first()
    if user is None or user.disabled:
        raise Unauthorized(_("invalid or disabled token"))
    return user


def active_user(session: Session, name: str) -> User | None:
    """The enabled account of that name (the review page's streaming cookie names one)."""
    user = session.exec(select(User).where(User.name == name)).first()
    return None if user is None or user.disabled else user


def record_denied(
    session: Session,
    user_name: str | None,
    action: str,
    subject: str,
    client_addr: str,
    *,
    reason: str = "",
) -> None:
    """A refused request (401 or 403): who (or ``anonymous``), what they asked, from where, why.
    The token itself is never logged."""
    events.record(
        session,
        actor=actor(user_name),
        action=action,
        subject_type="request",
        subject_id=subject[:64],
        outcome=Outcome.DENIED,
        client_addr=client_addr,
        details={"request": subject[:300], "reason": reason[:200]},
    )


def record_view_session(session: Session, user: User, ttl_s: int, *, client_addr: str = "") -> None:
    """The review page's streaming cookie was issued to ``user`` for ``ttl_s`` seconds."""
    events.record(
        session,
        actor=actor(user),
        action="session.open",
        subject_type="user",
        subject_id=user.name,
        client_addr=client_addr,
        details={"ttl_s": ttl_s},
    )


def set_language(session: Session, user: User, language: str | None, *, client_addr: str = "") -> User:
    """Set (or, with None, clear) the user's own language: pages, API errors and labels follow it
    before the browser's Accept-Language. Any user, for themselves. Logged as ``user.language``."""
    try:
        value = i18n.validate(language) if language is not None else None
    except ValueError:
        raise InvalidInput(
            _("unsupported language {language}; supported: {supported}").format(
                language=repr(language)[:40], supported=", ".join(i18n.LANGUAGES)
            ),
            code="user.language_unsupported",
        ) from None
    before = user.language
    user.language = value
    session.add(user)
    events.record(
        session,
        actor=actor(user),
        action="user.language",
        subject_type="user",
        subject_id=user.name,
        client_addr=client_addr,
        details={"before": before, "after": value},
    )
    return user

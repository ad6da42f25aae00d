"""Accounts and bearer tokens. Tokens are 256-bit random strings; only their SHA-256 is stored,
so a copy of the database does not let anyone act as a user."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from archive import events, i18n, localtime
from archive.access import Permission, actor, authorize
from archive.accounts.errors import AuthFailed, SignInRefused, UserInputInvalid, UserNotFound
from archive.accounts.models import Officer, Role, SessionVia, User, UserSession
from archive.clock import Clock, as_utc, utcnow
from archive.config import Settings, get_settings
from archive.errors import Conflict, Forbidden, InvalidInput
from archive.i18n import _
from archive.models import Outcome

TOKEN_PREFIX = "cus_"  # noqa: S105 - a prefix, not a secret: an API token (`custody users add` / `rotate`)
SESSION_PREFIX = "cps_"  # a page session (single sign-on)

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
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user = User(name=name, role=role, token_hash=hash_token(token), token_issued_at=utcnow())
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
        details={"role": role, "token_expires_at": _iso(token_expires_at(user))},
    )
    return user, token


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class Principal:
    """Who a request is, and by which credential: the user's API token, or one page session."""

    user: User
    session_id: str | None = None
    seen_due: bool = False  # the last use should be written (record_use)

    @property
    def credential(self) -> str:
        """A reference to the credential that stops matching once it is revoked (the streaming cookie
        carries it): the page session's id, or a fingerprint of the current token's hash."""
        if self.session_id is not None:
            return f"session:{self.session_id}"
        return "token:" + _fingerprint(self.user.token_hash)


def _fingerprint(token_hash: str) -> str:
    return hashlib.sha256(token_hash.encode()).hexdigest()[:16]


def token_expires_at(user: User, settings: Settings | None = None) -> datetime | None:
    """When the user's current token stops working (None: never, Settings.token_ttl_days = 0)."""
    ttl_days = (settings or get_settings()).token_ttl_days
    if not ttl_days:
        return None
    issued = as_utc(user.token_issued_at or user.created_at)
    return issued + timedelta(days=ttl_days)


def _seen_step() -> timedelta:
    return timedelta(seconds=min(60, max(get_settings().session_idle_s // 10, 1)))


def _due(last: datetime | None, now: datetime) -> bool:
    return last is None or now - as_utc(last) >= _seen_step()


def record_use(session: Session, principal: Principal, *, clock: Clock = utcnow) -> None:
    """Remember the last use of the user (and page session), at most once a minute: a write per
    request would be a write per video range request. Run in a short transaction of its own (the
    API does), so no request holds the user's row locked while it runs (a long upload)."""
    now = clock()
    cutoff = now - _seen_step()
    session.execute(
        update(User)
        .where(col(User.id) == principal.user.id)
        .where(or_(col(User.last_seen_at).is_(None), col(User.last_seen_at) < cutoff))
        .values(last_seen_at=now)
    )
    if principal.session_id is not None:
        session.execute(
            update(UserSession)
            .where(col(UserSession.id) == principal.session_id)
            .where(col(UserSession.last_seen_at) < cutoff)
            .values(last_seen_at=now)
        )


def _invalid() -> AuthFailed:
    return AuthFailed(_("invalid or disabled token"))


def authenticate_principal(
    session: Session, token: str | None, *, client_addr: str = "", clock: Clock = utcnow
) -> Principal:
    """The user (and page session) a bearer token stands for, checked afresh on every request: a
    disabled account, a rotated or expired token, an ended, idle or too old page session fail at once
    (:class:`AuthFailed`, naming the account when the credential named one)."""
    if not token:
        raise AuthFailed(_("missing bearer token (Authorization: Bearer <token>)"))
    now = clock()
    s = get_settings()
    if token.startswith(SESSION_PREFIX):
        row = session.exec(select(UserSession).where(UserSession.token_hash == hash_token(token))).first()
        user = session.get(User, row.user_id) if row is not None else None
        if row is None or user is None:
            raise _invalid()
        if row.ended_at is not None:
            raise AuthFailed(
                _("this page session was ended ({reason}): sign in again").format(reason=row.end_reason),
                account=user.name,
                code="auth.session_ended",
            )
        if user.disabled:
            raise AuthFailed(
                _("account {name} is disabled").format(name=user.name),
                account=user.name,
                code="auth.account_disabled",
            )
        if now >= as_utc(row.expires_at):
            raise AuthFailed(
                _("this page session reached its longest lifetime: sign in again"),
                account=user.name,
                code="auth.session_expired",
            )
        if now - as_utc(row.last_seen_at) > timedelta(seconds=s.session_idle_s):
            raise AuthFailed(
                _("this page session was idle for more than {minutes} minutes: sign in again").format(
                    minutes=s.session_idle_s // 60
                ),
                account=user.name,
                code="auth.session_idle",
            )
        return Principal(user, row.id, _due(row.last_seen_at, now) or _due(user.last_seen_at, now))
    user = session.exec(select(User).where(User.token_hash == hash_token(token))).first()
    if user is None:
        raise _invalid()
    if user.disabled:
        raise AuthFailed(
            _("account {name} is disabled").format(name=user.name),
            account=user.name,
            code="auth.account_disabled",
        )
    expires = token_expires_at(user, s)
    if expires is not None and now >= expires:
        raise AuthFailed(
            _(
                "this token expired at {when}; an administrator issues a new one (custody users rotate)"
            ).format(when=localtime.format_local(expires)),
            account=user.name,
            code="auth.token_expired",
        )
    return Principal(user, None, _due(user.last_seen_at, now))


def authenticate(session: Session, token: str | None, *, client_addr: str = "") -> User:
    return authenticate_principal(session, token, client_addr=client_addr).user


def check_credential(
    session: Session, name: str, credential: str, *, clock: Clock = utcnow
) -> Principal | None:
    """The user a streaming cookie names, if the credential it was issued under still holds (the
    token not rotated or expired, the page session not ended, idle or too old, the account enabled)."""
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None or user.disabled:
        return None
    kind, _sep, ref = credential.partition(":")
    now = clock()
    if kind == "token":
        expires = token_expires_at(user)
        if ref != _fingerprint(user.token_hash) or (expires is not None and now >= expires):
            return None
        return Principal(user, None, _due(user.last_seen_at, now))
    if kind == "session":
        row = session.get(UserSession, ref)
        s = get_settings()
        if (
            row is None
            or row.user_id != user.id
            or row.ended_at is not None
            or now >= as_utc(row.expires_at)
            or now - as_utc(row.last_seen_at) > timedelta(seconds=s.session_idle_s)
        ):
            return None
        return Principal(user, row.id, _due(row.last_seen_at, now) or _due(user.last_seen_at, now))
    return None  # a cookie from before credentials were bound to it: the page asks for a new one


# ---- the lifecycle: `custody users list|disable|enable|rotate|role` -------------------------------


@dataclass(frozen=True)
class UserStatus:
    name: str
    role: Role
    disabled: bool
    token_issued_at: datetime | None
    token_expires_at: datetime | None
    token_expired: bool
    last_seen_at: datetime | None
    open_sessions: int


def _find(session: Session, name: str) -> User:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise UserNotFound(_("no user named {name!r}").format(name=name[:64]))
    return user


def _check_actor(session: Session, by: User | None, target: User) -> str:
    """``by`` (an account acting through the CLI's --as) must be an administrator and may not act on
    their own account; None is the operator at the console (``system:cli``)."""
    if by is None:
        return "system:cli"
    authorize(by, Permission.USERS_MANAGE)
    if by.id == target.id:
        raise Forbidden(
            _("an administrator may not change their own account (ask another administrator)"),
            code="user.self_change",
        )
    return actor(by)


def _live_sessions(session: Session, user: User, now: datetime) -> list[UserSession]:
    rows = session.exec(
        select(UserSession).where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))  # type: ignore[union-attr]
    ).all()
    return [r for r in rows if as_utc(r.expires_at) > now]


def _end_sessions(session: Session, user: User, reason: str, now: datetime) -> list[str]:
    ended = []
    for row in _live_sessions(session, user, now):
        row.ended_at = now
        row.end_reason = reason
        session.add(row)
        ended.append(row.id)
    return ended


def list_users(session: Session, *, clock: Clock = utcnow) -> list[UserStatus]:
    now = clock()
    out = []
    for user in session.exec(select(User).order_by(User.name)).all():
        expires = token_expires_at(user)
        out.append(
            UserStatus(
                name=user.name,
                role=user.role,
                disabled=user.disabled,
                token_issued_at=as_utc(user.token_issued_at) if user.token_issued_at else None,
                token_expires_at=expires,
                token_expired=expires is not None and now >= expires,
                last_seen_at=as_utc(user.last_seen_at) if user.last_seen_at else None,
                open_sessions=len(_live_sessions(session, user, now)),
            )
        )
    return out


def _reason(reason: str, *, required: bool) -> str:
    reason = reason.strip()
    if required and not reason:
        raise UserInputInvalid(_("a reason is required (--reason)"), code="user.reason_required")
    if len(reason) > 500:
        raise UserInputInvalid(_("the reason is longer than 500 characters"), code="user.reason_too_long")
    return reason


def disable_user(
    session: Session, name: str, *, reason: str, by: User | None = None, clock: Clock = utcnow
) -> User:
    """Every token and page session of the user fails from the next request on (401). Logged as
    ``user.disable`` with the sessions it ended."""
    user = _find(session, name)
    who = _check_actor(session, by, user)
    reason = _reason(reason, required=True)
    if user.disabled:
        raise Conflict(_("user {name!r} is already disabled").format(name=name), code="user.already_disabled")
    now = clock()
    user.disabled = True
    session.add(user)
    ended = _end_sessions(session, user, "disabled", now)
    events.record(
        session,
        actor=who,
        action="user.disable",
        subject_type="user",
        subject_id=user.name,
        details={"reason": reason, "sessions_ended": ended},
        clock=clock,
    )
    return user


def enable_user(
    session: Session, name: str, *, reason: str = "", by: User | None = None, clock: Clock = utcnow
) -> User:
    """The account works again with its current token (if not expired); ended sessions stay ended."""
    user = _find(session, name)
    who = _check_actor(session, by, user)
    reason = _reason(reason, required=False)
    if not user.disabled:
        raise Conflict(_("user {name!r} is not disabled").format(name=name), code="user.not_disabled")
    user.disabled = False
    session.add(user)
    events.record(
        session,
        actor=who,
        action="user.enable",
        subject_type="user",
        subject_id=user.name,
        details={"reason": reason},
        clock=clock,
    )
    return user


def rotate_token(
    session: Session, name: str, *, reason: str = "", by: User | None = None, clock: Clock = utcnow
) -> tuple[User, str]:
    """A new token for the user, shown once; the old one fails from the next request on, and so do
    the user's page sessions and streaming cookies. Logged as ``user.token_rotate``."""
    user = _find(session, name)
    who = _check_actor(session, by, user)
    reason = _reason(reason, required=False)
    now = clock()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user.token_hash = hash_token(token)
    user.token_issued_at = now
    session.add(user)
    ended = _end_sessions(session, user, "token rotated", now)
    expires = token_expires_at(user)
    events.record(
        session,
        actor=who,
        action="user.token_rotate",
        subject_type="user",
        subject_id=user.name,
        details={
            "reason": reason,
            "expires_at": expires.isoformat() if expires else None,
            "sessions_ended": ended,
        },
        clock=clock,
    )
    return user, token


def set_role(
    session: Session, name: str, role: Role, *, reason: str, by: User | None = None, clock: Clock = utcnow
) -> User:
    """Change the user's role, with a reason (``user.role``: before, after, reason). It takes effect
    on the user's next request; sessions stay open (every request is authorized afresh)."""
    user = _find(session, name)
    who = _check_actor(session, by, user)
    reason = _reason(reason, required=True)
    if user.role == role:
        raise Conflict(
            _("user {name!r} already has the role {role}").format(name=name, role=role),
            code="user.same_role",
        )
    before = user.role
    user.role = role
    session.add(user)
    if role is Role.OFFICER and session.get(Officer, user.name) is None:
        session.add(Officer(badge=user.name, name=user.name))
    events.record(
        session,
        actor=who,
        action="user.role",
        subject_type="user",
        subject_id=user.name,
        details={"before": before, "after": role, "reason": reason},
        clock=clock,
    )
    return user


# ---- page sessions ------------------------------------------------------------------------------


def start_session(
    session: Session,
    user: User,
    *,
    via: SessionVia,
    client_addr: str = "",
    details: dict[str, Any] | None = None,
    clock: Clock = utcnow,
) -> tuple[UserSession, str]:
    """A page session for ``user`` (already identified): its token, shown once. ``session.login``."""
    now = clock()
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    row = UserSession(
        user_id=user.id or 0,
        token_hash=hash_token(token),
        via=via,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=get_settings().session_max_s),
        client_addr=client_addr[:64],
    )
    session.add(row)
    user.last_seen_at = now
    session.add(user)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="session.login",
        subject_type="user",
        subject_id=user.name,
        client_addr=client_addr,
        details={"via": via, "session": row.id, "expires_at": row.expires_at.isoformat(), **(details or {})},
        clock=clock,
    )
    return row, token


def end_session(
    session: Session, principal: Principal, *, client_addr: str = "", clock: Clock = utcnow
) -> UserSession:
    """Log out: the page session ends at once (``session.logout``). An API token is not a session."""
    if principal.session_id is None:
        raise Conflict(
            _(
                "this request used an API token, not a page session: nothing to log out of "
                "(an API token is revoked with custody users rotate)"
            ),
            code="session.not_a_session",
        )
    row = session.get(UserSession, principal.session_id)
    if row is None or row.ended_at is not None:
        raise Conflict(_("this page session has already ended"), code="session.ended")
    now = clock()
    row.ended_at = now
    row.end_reason = "logout"
    session.add(row)
    events.record(
        session,
        actor=actor(principal.user),
        action="session.logout",
        subject_type="user",
        subject_id=principal.user.name,
        client_addr=client_addr,
        details={"session": row.id},
        clock=clock,
    )
    return row


def sso_sign_in(
    session: Session, username: str, *, identity: dict[str, str], client_addr: str = "", clock: Clock = utcnow
) -> tuple[UserSession, str, User]:
    """The identity provider vouched for ``username`` (its configured claim): a page session for the
    enabled Custody user of that name. Anyone else is refused (:class:`SignInRefused`, 403); the
    refusal is logged here as ``auth.sso_refused`` by the caller (:func:`record_sso_refusal`), since
    this transaction is rolled back."""
    user = session.exec(select(User).where(User.name == username)).first() if username else None
    if user is None:
        raise SignInRefused(
            _("the identity provider signed in {name!r}, who has no account here").format(name=username[:64]),
            code="auth.sso_unknown_user",
        )
    if user.disabled:
        raise SignInRefused(
            _("account {name} is disabled").format(name=user.name), code="auth.sso_account_disabled"
        )
    row, token = start_session(
        session, user, via=SessionVia.OIDC, client_addr=client_addr, details=identity, clock=clock
    )
    return row, token, user


def record_sso_refusal(
    session: Session, username: str, reason: str, *, identity: dict[str, str], client_addr: str = ""
) -> None:
    events.record(
        session,
        actor=actor(None),
        action="auth.sso_refused",
        subject_type="user",
        subject_id=(username or "-")[:64],
        outcome=Outcome.DENIED,
        client_addr=client_addr,
        details={"reason": reason[:200], **identity},
    )


def record_throttled(
    session: Session, kind: str, key: str, *, failures: int, retry_after: int, request: str, client_addr: str
) -> None:
    """The one custody-log entry of a throttling window (``auth.throttled``)."""
    events.record(
        session,
        actor=actor(key if kind == "account" else None),
        action="auth.throttled",
        subject_type="user" if kind == "account" else "client_addr",
        subject_id=key[:64],
        outcome=Outcome.DENIED,
        client_addr=client_addr,
        details={
            "failures": failures,
            "window_s": get_settings().auth_fail_window_s,
            "retry_after_s": retry_after,
            "request": request[:300],
        },
    )


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

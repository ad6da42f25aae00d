"""Ask, approve or reject, cancel: the one two-person mechanism for risky changes.

The domain that owns an action registers a :class:`Handler` for its kind: the permission a second
person needs to approve it, and the function that carries it out. The domain's own entry point
checks the requester's rights and the subject, then calls :func:`request`; nothing changes until
:func:`decide` approves, which carries the action out in the same transaction as the approval
(under a row lock: a request is carried out once, however often it is approved). If carrying it
out fails (the hold was released meanwhile, the case closed), nothing is stored and the request
stays pending. The requester can never approve or reject their own request; a request no one
decided within ``approval_ttl_s`` (default seven days) is expired and can only be asked again.

Events: ``approval.request``, ``approval.approve``, ``approval.execute`` (with the result),
``approval.reject``, ``approval.cancel``; the action logs its own event as well (``case.unlink``,
``retention.unflag``, ...) in the requester's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, actor, authorize, can
from archive.accounts.models import User
from archive.approvals.errors import (
    AlreadyDecided,
    ApprovalNotFound,
    Duplicate,
    Expired,
    InvalidApproval,
    OwnRequest,
)
from archive.approvals.models import ApprovalKind, ApprovalPublic, ApprovalRequest, ApprovalState
from archive.clock import Clock, as_utc, utcnow
from archive.context import Dispatcher
from archive.i18n import _
from archive.storage import ObjectStore


@dataclass(frozen=True)
class Deps:
    """What carrying an action out may need besides the session."""

    store: ObjectStore | None = None
    dispatcher: Dispatcher | None = None
    addr: str = ""


# (session, the request, the requester, the approver, deps, clock) -> the result, logged and stored
Execute = Callable[[Session, ApprovalRequest, User, User, Deps, Clock], dict[str, Any]]


@dataclass(frozen=True)
class Handler:
    approve: Permission  # what the second person must hold
    execute: Execute


_HANDLERS: dict[ApprovalKind, Handler] = {}


def register_handler(kind: ApprovalKind, handler: Handler) -> None:
    _HANDLERS[kind] = handler


def _handler(kind: ApprovalKind) -> Handler:
    h = _HANDLERS.get(kind)
    if h is None:  # a process that never imported the owning domain: a bug, not a user error
        raise RuntimeError(f"no approval handler registered for {kind}")
    return h


def _reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidApproval(_("{what} needs a reason").format(what=what))
    if len(reason) > 2000:
        raise InvalidApproval(_("reason: at most 2000 characters"))
    return reason


def state_of(row: ApprovalRequest, now: datetime) -> ApprovalState:
    if row.state is ApprovalState.PENDING and as_utc(row.expires_at) <= now:
        return ApprovalState.EXPIRED
    return row.state


def _ttl() -> float:
    from archive.config import get_settings

    return get_settings().approval_ttl_s


def request(
    session: Session,
    user: User,
    kind: ApprovalKind,
    subject_type: str,
    subject_id: str,
    payload: dict[str, Any],
    reason: str,
    *,
    addr: str = "",
    clock: Clock = utcnow,
) -> ApprovalRequest:
    """Record a request; the caller has checked that ``user`` may ask for it and that the subject is
    there. Asking again for what you already asked returns that request; someone else's pending
    request for the same thing answers 409 naming it."""
    _handler(kind)
    reason = _reason(reason, _("a request"))
    now = clock()
    for row in session.exec(
        select(ApprovalRequest).where(
            ApprovalRequest.kind == kind,
            ApprovalRequest.subject_id == subject_id,
            ApprovalRequest.state == ApprovalState.PENDING,
        )
    ).all():
        if state_of(row, now) is not ApprovalState.PENDING or row.payload != payload:
            continue
        if row.requested_by == user.name and row.payload == payload:
            return row
        raise Duplicate(
            _("request {id} by {who} for this awaits a decision").format(id=row.id, who=row.requested_by)
        )
    row = ApprovalRequest(
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        payload=payload,
        reason=reason,
        requested_by=user.name,
        requested_at=now,
        expires_at=now + timedelta(seconds=_ttl()),
    )
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="approval.request",
        subject_type=subject_type,
        subject_id=subject_id,
        client_addr=addr,
        clock=clock,
        details={"request": row.id, "kind": kind, "reason": reason, "expires_at": row.expires_at.isoformat()},
    )
    return row


def _locked(session: Session, request_id: int) -> ApprovalRequest:
    row = session.exec(
        select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update()
    ).first()
    if row is None:
        raise ApprovalNotFound(_("no approval request {id}").format(id=request_id))
    return row


def _open(row: ApprovalRequest, now: datetime) -> None:
    st = state_of(row, now)
    if st is ApprovalState.EXPIRED:
        raise Expired(
            _("approval request {id} expired at {at}; ask again").format(
                id=row.id, at=as_utc(row.expires_at).isoformat()
            )
        )
    if st is not ApprovalState.PENDING:
        raise AlreadyDecided(_("approval request {id} is already {state}").format(id=row.id, state=st))


def decide(
    session: Session,
    user: User,
    request_id: int,
    *,
    approve: bool,
    reason: str = "",
    deps: Deps | None = None,
    clock: Clock = utcnow,
) -> ApprovalRequest:
    """Approve (and carry out) or reject someone else's request."""
    deps = deps or Deps()
    row = _locked(session, request_id)
    handler = _handler(row.kind)
    authorize(user, handler.approve, _("decide {kind} requests").format(kind=row.kind))
    if row.requested_by == user.name:
        raise OwnRequest(_("the requester cannot approve or reject their own request"))
    now = clock()
    _open(row, now)
    if approve:
        reason = (reason or "").strip()[:2000]
    else:
        reason = _reason(reason, _("a rejection"))
    row.state = ApprovalState.APPROVED if approve else ApprovalState.REJECTED
    row.decided_by, row.decided_at, row.decision_reason = user.name, now, reason
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="approval.approve" if approve else "approval.reject",
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        client_addr=deps.addr,
        clock=clock,
        details={"request": row.id, "kind": row.kind, "requested_by": row.requested_by, "reason": reason},
    )
    if not approve:
        return row
    requester = session.exec(select(User).where(User.name == row.requested_by)).first()
    if requester is None or requester.disabled:
        raise InvalidApproval(
            _("the requester {who} no longer has an active account; ask again").format(who=row.requested_by)
        )
    result = handler.execute(session, row, requester, user, deps, clock)
    row.result = result
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="approval.execute",
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        client_addr=deps.addr,
        clock=clock,
        details={"request": row.id, "kind": row.kind, "requested_by": row.requested_by, "result": result},
    )
    return row


def cancel(
    session: Session, user: User, request_id: int, reason: str = "", *, addr: str = "", clock: Clock = utcnow
) -> ApprovalRequest:
    """The requester withdraws their own pending request."""
    row = _locked(session, request_id)
    if row.requested_by != user.name:
        raise ApprovalNotFound(_("no approval request {id}").format(id=request_id))
    now = clock()
    _open(row, now)
    row.state = ApprovalState.CANCELLED
    row.decided_by, row.decided_at, row.decision_reason = user.name, now, (reason or "").strip()[:2000]
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="approval.cancel",
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        client_addr=addr,
        clock=clock,
        details={"request": row.id, "kind": row.kind, "reason": row.decision_reason},
    )
    return row


def _may_see(user: User, row: ApprovalRequest) -> bool:
    if row.requested_by == user.name or can(user, Permission.APPROVALS_READ_ALL):
        return True
    h = _HANDLERS.get(row.kind)
    return h is not None and can(user, h.approve)


def get(session: Session, user: User, request_id: int) -> ApprovalRequest:
    row = session.get(ApprovalRequest, request_id)
    if row is None or not _may_see(user, row):
        raise ApprovalNotFound(_("no approval request {id}").format(id=request_id))
    return row


def list_requests(
    session: Session,
    user: User,
    *,
    state: ApprovalState | None = None,
    kind: ApprovalKind | None = None,
    clock: Clock = utcnow,
) -> list[ApprovalRequest]:
    """Your own requests, those you may decide, and (auditors) all of them; oldest first."""
    stmt = select(ApprovalRequest)
    if kind is not None:
        stmt = stmt.where(ApprovalRequest.kind == kind)
    if state in (ApprovalState.PENDING, ApprovalState.EXPIRED):
        stmt = stmt.where(ApprovalRequest.state == ApprovalState.PENDING)
    elif state is not None:
        stmt = stmt.where(ApprovalRequest.state == state)
    now = clock()
    rows = [r for r in session.exec(stmt.order_by(col(ApprovalRequest.id))) if _may_see(user, r)]
    if state is not None:
        rows = [r for r in rows if state_of(r, now) is state]
    return rows


def public(row: ApprovalRequest, *, clock: Clock = utcnow) -> ApprovalPublic:
    data = row.model_dump(exclude={"state"})
    return ApprovalPublic(**data, state=state_of(row, clock()))

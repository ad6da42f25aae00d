"""Retention's two-person actions (issue 10, finding 4): clearing a permanent flag, releasing a legal
hold and installing a policy are asked for here and carried out by ``archive.approvals`` when a
second person approves. Who approves: clearing a permanent flag and a policy, another records
manager or an administrator; a legal hold, another records manager (docs/security.md)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from archive.access import Permission, actor
from archive.accounts.models import User
from archive.approvals import services as approvals
from archive.approvals.errors import Stale
from archive.approvals.models import ApprovalKind, ApprovalRequest
from archive.clock import Clock
from archive.db import after_commit
from archive.errors import Conflict, NotFound
from archive.i18n import _
from retention import services as rs
from retention.models import LegalHold, RetentionFlag
from retention.policy import FlagKind, permanent_flags, validate_policy

RECLASSIFY_TASK = "custody.retention_reclassify"


def _store(deps: approvals.Deps) -> Any:
    if deps.store is None:  # every caller that decides passes the store; a bug otherwise
        raise RuntimeError("carrying out a retention approval needs the object store")
    return deps.store


def is_permanent(session: Session, kind: FlagKind) -> bool:
    """Whether a flag of ``kind`` keeps an item permanently under the policy in force."""
    return kind in permanent_flags(rs.current_policy(session))


# --------------------------------------------------------------------------- clearing a permanent flag


def request_unflag(
    session: Session, user: User, media_id: str, kind: FlagKind, reason: str, *, addr: str = ""
) -> ApprovalRequest:
    """The caller has authorized ``user`` to clear flags on this (visible) item."""
    from sqlmodel import col, select

    active = session.exec(
        select(RetentionFlag).where(
            RetentionFlag.media_id == media_id,
            RetentionFlag.kind == kind,
            col(RetentionFlag.cleared_at).is_(None),
        )
    ).first()
    if active is None:
        raise NotFound(_("media {media_id} has no active {kind} flag").format(media_id=media_id, kind=kind))
    return approvals.request(
        session,
        user,
        ApprovalKind.RETENTION_UNFLAG,
        "media",
        media_id,
        {"media_id": media_id, "flag": str(kind)},
        reason,
        addr=addr,
    )


def _execute_unflag(
    session: Session,
    row: ApprovalRequest,
    requester: User,
    approver: User,
    deps: approvals.Deps,
    clock: Clock,
) -> dict[str, Any]:
    media_id, kind = str(row.payload["media_id"]), FlagKind(str(row.payload["flag"]))
    decision = rs.clear_flag(
        session,
        _store(deps),
        media_id,
        kind,
        actor=actor(requester),
        reason=row.reason,
        client_addr=deps.addr,
        clock=clock,
    )
    return {"media": media_id, "flag": str(kind), "rule": decision.winner.rule_id if decision else None}


# --------------------------------------------------------------------------- releasing a legal hold


def request_release(
    session: Session, user: User, hold_id: int, reason: str, *, addr: str = ""
) -> ApprovalRequest:
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise NotFound(_("no legal hold {hold_id}").format(hold_id=hold_id))
    if hold.released_at is not None:
        raise Conflict(_("legal hold {hold_id} was already released").format(hold_id=hold_id))
    return approvals.request(
        session,
        user,
        ApprovalKind.RETENTION_RELEASE,
        "media",
        hold.media_id,
        {"hold_id": hold_id, "media_id": hold.media_id},
        reason,
        addr=addr,
    )


def _execute_release(
    session: Session,
    row: ApprovalRequest,
    requester: User,
    approver: User,
    deps: approvals.Deps,
    clock: Clock,
) -> dict[str, Any]:
    hold_id = int(row.payload["hold_id"])
    decision = rs.release_hold(
        session,
        _store(deps),
        hold_id,
        actor=actor(requester),
        reason=row.reason,
        client_addr=deps.addr,
        clock=clock,
    )
    return {
        "hold": hold_id,
        "media": row.payload.get("media_id"),
        "rule": decision.winner.rule_id if decision else None,
    }


# --------------------------------------------------------------------------- the policy


def request_policy(
    session: Session, user: User, data: dict[str, Any], reason: str, *, addr: str = ""
) -> ApprovalRequest:
    """Checked now against the legal minimums (422 naming each problem, nothing stored), and again
    when approved; approval installs it only if the policy in force is still the one it replaces."""
    current = rs.current_policy(session)
    if not isinstance(data, dict):
        from retention.policy import PolicyInvalid

        raise PolicyInvalid(_("retention policy: not a JSON object"))
    validate_policy({**data, "version": current.version + 1})
    return approvals.request(
        session,
        user,
        ApprovalKind.RETENTION_POLICY,
        "policy",
        str(current.version + 1),
        {"policy": data, "replaces_version": current.version},
        reason,
        addr=addr,
    )


def _execute_policy(
    session: Session,
    row: ApprovalRequest,
    requester: User,
    approver: User,
    deps: approvals.Deps,
    clock: Clock,
) -> dict[str, Any]:
    current = rs.current_policy(session)
    if current.version != row.payload.get("replaces_version"):
        raise Stale(
            _(
                "the policy in force is version {now}, not the version {was} this request replaces; ask again"
            ).format(now=current.version, was=row.payload.get("replaces_version"))
        )
    policy = rs.set_policy(
        session, row.payload["policy"], actor=actor(requester), reason=row.reason, client_addr=deps.addr
    )
    dispatcher = deps.dispatcher
    if dispatcher is not None:
        after_commit(session, lambda: dispatcher.send_task(RECLASSIFY_TASK))
    return {"version": policy.version}


approvals.register_handler(
    ApprovalKind.RETENTION_UNFLAG,
    approvals.Handler(approve=Permission.APPROVE_UNFLAG, execute=_execute_unflag),
)
approvals.register_handler(
    ApprovalKind.RETENTION_RELEASE,
    approvals.Handler(approve=Permission.APPROVE_RELEASE, execute=_execute_release),
)
approvals.register_handler(
    ApprovalKind.RETENTION_POLICY,
    approvals.Handler(approve=Permission.APPROVE_POLICY, execute=_execute_policy),
)

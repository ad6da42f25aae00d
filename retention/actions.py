"""What people ask of retention: explanations, reviewers' flags, legal holds, the policy, the report.

Each function takes the acting user, decides whether they may (``archive.access``), does the work
through ``retention.services`` (which the sweeps and the CLI use directly, as ``system:`` actors)
and answers with a ``*Public`` model. They flush, never commit; tasks go out after the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select

from archive.access import Permission, actor, authorize
from archive.accounts.models import User
from archive.approvals.models import ApprovalRequest
from archive.cases.services import media_visible
from archive.clock import Clock, as_utc, utcnow
from archive.errors import InvalidInput, NotFound
from archive.i18n import _
from archive.media.models import Media
from archive.storage import ObjectStore
from retention import approvals as retention_approvals
from retention import services as rs
from retention.models import (
    LegalHold,
    LegalHoldPublic,
    RetentionDuePublic,
    RetentionFlag,
    RetentionFlagPublic,
    RetentionPublic,
    RetentionReportPublic,
    RetentionStatus,
)
from retention.policy import FlagKind, Policy

RECLASSIFY_TASK = retention_approvals.RECLASSIFY_TASK


def _media(session: Session, user: User, media_id: str) -> Media:
    item = session.get(Media, media_id)
    if item is None or not media_visible(session, user, item):
        raise NotFound(_("no media {media_id}").format(media_id=media_id))
    return item


def explain(session: Session, user: User, media_id: str) -> RetentionPublic:
    """Which rules apply, which wins, and the delete-after date or "permanent"."""
    item = _media(session, user, media_id)
    status = session.get(RetentionStatus, item.id)
    if status is None:
        label = "not archived" if not item.state.archived else "not yet classified (kept)"
        return RetentionPublic(
            media_id=item.id,
            status=label,
            delete_after=None,
            rule=None,
            legal_hold=False,
            storage_retain_until=None,
            storage_legal_hold=False,
            explanation={},
            flags=[],
            holds=[],
        )
    flags = session.exec(select(RetentionFlag).where(RetentionFlag.media_id == item.id)).all()
    holds = session.exec(select(LegalHold).where(LegalHold.media_id == item.id)).all()
    return RetentionPublic(
        media_id=item.id,
        status="deleted" if status.deleted_at else str(status.explanation.get("result", "")),
        delete_after=as_utc(status.delete_after).isoformat() if status.delete_after else None,
        rule=status.rule_id,
        legal_hold=status.legal_hold,
        storage_retain_until=as_utc(status.storage_retain_until).isoformat()
        if status.storage_retain_until
        else None,
        storage_legal_hold=status.storage_legal_hold,
        explanation=status.explanation,
        flags=[RetentionFlagPublic.model_validate(f.model_dump()) for f in flags],
        holds=[LegalHoldPublic.model_validate(h.model_dump()) for h in holds],
    )


def _act_on_media(
    session: Session,
    user: User,
    media_id: str,
    permission: Permission,
    what: str,
    act: Callable[[str], object],
) -> RetentionPublic:
    """Authorize, check the item is visible to the user, act as them, and explain the result."""
    authorize(user, permission, what)
    _media(session, user, media_id)
    act(actor(user))
    return explain(session, user, media_id)


def flag(
    session: Session,
    store: ObjectStore,
    user: User,
    media_id: str,
    kind: FlagKind,
    reason: str,
    *,
    client_addr: str = "",
) -> RetentionPublic:
    return _act_on_media(
        session,
        user,
        media_id,
        Permission.RETENTION_FLAG,
        "flag recordings for retention",
        lambda who: rs.set_flag(
            session, store, media_id, kind, actor=who, reason=reason, client_addr=client_addr
        ),
    )


def unflag(
    session: Session,
    store: ObjectStore,
    user: User,
    media_id: str,
    kind: FlagKind,
    reason: str,
    *,
    client_addr: str = "",
) -> RetentionPublic | ApprovalRequest:
    """Clear a flag. A flag that keeps the item permanently is only asked for here (issue 10,
    finding 4): the request waits for a second person (``archive.approvals``); others clear at once."""
    if not retention_approvals.is_permanent(session, kind):
        return _act_on_media(
            session,
            user,
            media_id,
            Permission.RETENTION_FLAG,
            "clear retention flags",
            lambda who: rs.clear_flag(
                session, store, media_id, kind, actor=who, reason=reason, client_addr=client_addr
            ),
        )
    authorize(user, Permission.RETENTION_FLAG, "clear retention flags")
    _media(session, user, media_id)
    return retention_approvals.request_unflag(session, user, media_id, kind, reason, addr=client_addr)


def review(
    session: Session, store: ObjectStore, user: User, media_id: str, note: str, *, client_addr: str = ""
) -> RetentionPublic:
    """A reviewer records that they looked (releases the recorder's "important" mark)."""
    return _act_on_media(
        session,
        user,
        media_id,
        Permission.RETENTION_FLAG,
        "record a review",
        lambda who: rs.mark_reviewed(session, store, media_id, actor=who, note=note, client_addr=client_addr),
    )


def hold(
    session: Session, store: ObjectStore, user: User, media_id: str, reason: str, *, client_addr: str = ""
) -> RetentionPublic:
    return _act_on_media(
        session,
        user,
        media_id,
        Permission.RETENTION_HOLD,
        "place legal holds",
        lambda who: rs.place_hold(
            session, store, media_id, actor=who, reason=reason, client_addr=client_addr
        ),
    )


def release(
    session: Session, user: User, hold_id: int, reason: str, *, client_addr: str = ""
) -> ApprovalRequest:
    """Ask to lift a hold: a records manager asks, another records manager approves (not an admin,
    not the person who asked)."""
    authorize(user, Permission.RETENTION_HOLD_RELEASE, "release legal holds")
    return retention_approvals.request_release(session, user, hold_id, reason, addr=client_addr)


def policy(session: Session, user: User) -> Policy:
    """The policy in force (its public shape is the policy document itself, see retention.policy)."""
    authorize(user, Permission.RETENTION_POLICY_READ, "read the retention policy")
    return rs.current_policy(session)


def set_policy(
    session: Session, user: User, data: dict[str, Any], reason: str, *, client_addr: str = ""
) -> ApprovalRequest:
    """Ask for a new version of the policy: refused at once (422) below the legal minimums; installed
    when another records manager or an administrator approves, then every live item is reclassified."""
    authorize(user, Permission.RETENTION_POLICY_SET, "change the retention policy")
    if not reason.strip():
        raise InvalidInput(_("a policy change needs a reason"))
    return retention_approvals.request_policy(session, user, data, reason, addr=client_addr)


def report(session: Session, user: User, days: int, *, clock: Clock = utcnow) -> RetentionReportPublic:
    """What becomes deletable within ``days`` (at most ten years): for records managers."""
    authorize(user, Permission.RETENTION_REPORT, "read the retention report")
    now = clock()
    rows = rs.upcoming(session, now, max(0, min(days, 3660)))
    names = {
        m.id: m for m in session.exec(select(Media).where(col(Media.id).in_([r.media_id for r in rows])))
    }
    return RetentionReportPublic(
        as_of=now.isoformat(),
        days=days,
        items=[
            RetentionDuePublic(
                media_id=r.media_id,
                rule=r.rule_id,
                delete_after=as_utc(r.delete_after).isoformat() if r.delete_after else None,
                file_name=names[r.media_id].file_name if r.media_id in names else None,
                officer=names[r.media_id].officer_badge if r.media_id in names else None,
            )
            for r in rows
        ],
    )

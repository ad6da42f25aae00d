"""Retention: explanations, reviewers' flags, legal holds, the policy, the 30-day report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from api.deps import ClientAddr, CurrentUser, DispatcherDep, SessionDep, StoreDep
from archive import accounts
from archive.cases.services import media_visible
from archive.clock import as_utc, utcnow
from archive.db import after_commit
from archive.errors import NotFound
from archive.models import Media, Role, User
from retention import services as rs
from retention.models import LegalHold, RetentionFlag, RetentionStatus
from retention.policy import FlagKind

router = APIRouter(prefix="/api/v1", tags=["retention"])

FLAGGERS = frozenset({Role.REVIEWER, Role.RECORDS_MANAGER, Role.ADMIN})
HOLDERS = frozenset({Role.RECORDS_MANAGER, Role.ADMIN})
POLICY_READERS = frozenset({Role.RECORDS_MANAGER, Role.ADMIN, Role.AUDITOR})


def _actor(user: User) -> str:
    return f"user:{user.name}"


def _media(session: Session, user: User, media_id: str) -> Media:
    item = session.get(Media, media_id)
    if item is None or not media_visible(session, user, item):
        raise NotFound(f"no media {media_id}")
    return item


class RetentionOut(BaseModel):
    media_id: str
    status: str  # "permanent", "kept", "delete after ...", "deleted", "not archived"
    delete_after: str | None
    rule: str | None
    legal_hold: bool
    storage_retain_until: str | None
    storage_legal_hold: bool
    explanation: dict[str, Any]
    flags: list[dict[str, Any]]
    holds: list[dict[str, Any]]


@router.get("/media/{media_id}/retention", response_model=RetentionOut)
def explain(media_id: str, session: SessionDep, user: CurrentUser) -> RetentionOut:
    """Which rules apply, which wins, and the delete-after date or "permanent"."""
    item = _media(session, user, media_id)
    status = session.get(RetentionStatus, item.id)
    flags = session.exec(select(RetentionFlag).where(RetentionFlag.media_id == item.id)).all()
    holds = session.exec(select(LegalHold).where(LegalHold.media_id == item.id)).all()
    if status is None:
        label = "not archived" if not item.state.archived else "not yet classified (kept)"
        return RetentionOut(
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
    return RetentionOut(
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
        flags=[f.model_dump(mode="json") for f in flags],
        holds=[h.model_dump(mode="json") for h in holds],
    )


class Reason(BaseModel):
    reason: str = Field(min_length=3, max_length=2000)


class FlagIn(Reason):
    kind: FlagKind


@router.post("/media/{media_id}/flags", response_model=RetentionOut)
def flag(
    media_id: str, body: FlagIn, session: SessionDep, user: CurrentUser, store: StoreDep, addr: ClientAddr
) -> RetentionOut:
    accounts.require_role(user, FLAGGERS, "flag recordings for retention")
    _media(session, user, media_id)
    rs.set_flag(session, store, media_id, body.kind, actor=_actor(user), reason=body.reason, client_addr=addr)
    return explain(media_id, session, user)


@router.post("/media/{media_id}/flags/{kind}/clear", response_model=RetentionOut)
def unflag(
    media_id: str,
    kind: FlagKind,
    body: Reason,
    session: SessionDep,
    user: CurrentUser,
    store: StoreDep,
    addr: ClientAddr,
) -> RetentionOut:
    accounts.require_role(user, FLAGGERS, "clear retention flags")
    _media(session, user, media_id)
    rs.clear_flag(session, store, media_id, kind, actor=_actor(user), reason=body.reason, client_addr=addr)
    return explain(media_id, session, user)


class ReviewIn(BaseModel):
    note: str = Field(default="", max_length=2000)


@router.post("/media/{media_id}/review", response_model=RetentionOut)
def review(
    media_id: str, body: ReviewIn, session: SessionDep, user: CurrentUser, store: StoreDep, addr: ClientAddr
) -> RetentionOut:
    """A reviewer records that they looked (releases the recorder's "important" mark)."""
    accounts.require_role(user, FLAGGERS, "record a review")
    _media(session, user, media_id)
    rs.mark_reviewed(session, store, media_id, actor=_actor(user), note=body.note, client_addr=addr)
    return explain(media_id, session, user)


@router.post("/media/{media_id}/holds", response_model=RetentionOut, status_code=201)
def hold(
    media_id: str, body: Reason, session: SessionDep, user: CurrentUser, store: StoreDep, addr: ClientAddr
) -> RetentionOut:
    accounts.require_role(user, HOLDERS, "place legal holds")
    _media(session, user, media_id)
    rs.place_hold(session, store, media_id, actor=_actor(user), reason=body.reason, client_addr=addr)
    return explain(media_id, session, user)


@router.post("/holds/{hold_id}/release", response_model=RetentionOut)
def release(
    hold_id: int, body: Reason, session: SessionDep, user: CurrentUser, store: StoreDep, addr: ClientAddr
) -> RetentionOut:
    # Only a records manager may lift a hold: not an admin, not the person who placed it by role alone.
    accounts.require_role(user, frozenset({Role.RECORDS_MANAGER}), "release legal holds")
    h = session.get(LegalHold, hold_id)
    if h is None:
        raise NotFound(f"no legal hold {hold_id}")
    rs.release_hold(session, store, hold_id, actor=_actor(user), reason=body.reason, client_addr=addr)
    return explain(h.media_id, session, user)


@router.get("/retention/policy")
def get_policy(session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    accounts.require_role(user, POLICY_READERS, "read the retention policy")
    return rs.current_policy(session).to_json()


class PolicyIn(Reason):
    policy: dict[str, Any]


@router.put("/retention/policy")
def put_policy(
    body: PolicyIn, session: SessionDep, user: CurrentUser, addr: ClientAddr, dispatcher: DispatcherDep
) -> dict[str, Any]:
    """A new version of the policy; every live item is reclassified in the background."""
    accounts.require_role(user, frozenset({Role.RECORDS_MANAGER}), "change the retention policy")
    policy = rs.set_policy(session, body.policy, actor=_actor(user), reason=body.reason, client_addr=addr)
    after_commit(session, lambda: dispatcher.send_task("custody.retention_reclassify"))
    return policy.to_json()


@router.get("/retention/report")
def report(session: SessionDep, user: CurrentUser, days: int = 30) -> dict[str, Any]:
    """What becomes deletable within `days` (default 30): for records managers."""
    accounts.require_role(user, HOLDERS, "read the retention report")
    now = utcnow()
    rows = rs.upcoming(session, now, max(0, min(days, 3660)))
    names = {
        m.id: m for m in session.exec(select(Media).where(col(Media.id).in_([r.media_id for r in rows])))
    }
    return {
        "as_of": now.isoformat(),
        "days": days,
        "items": [
            {
                "media_id": r.media_id,
                "rule": r.rule_id,
                "delete_after": as_utc(r.delete_after).isoformat() if r.delete_after else None,
                "file_name": names[r.media_id].file_name if r.media_id in names else None,
                "officer": names[r.media_id].officer_badge if r.media_id in names else None,
            }
            for r in rows
        ],
    }

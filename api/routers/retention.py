"""Retention: explanations, reviewers' flags, legal holds, the policy, the 30-day report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api.deps import ClientAddr, CurrentUser, SessionDep, StoreDep
from archive.approvals import services as approvals
from archive.approvals.models import ApprovalPublic
from retention import actions
from retention.models import RetentionPublic, RetentionReportPublic
from retention.policy import FlagKind, Policy

router = APIRouter(prefix="/api/v1", tags=["retention"])


@router.get("/media/{media_id}/retention", response_model=RetentionPublic)
def explain(media_id: str, session: SessionDep, user: CurrentUser) -> RetentionPublic:
    """Which rules apply, which wins, and the delete-after date or "permanent"."""
    return actions.explain(session, user, media_id)


class Reason(BaseModel):
    reason: str = Field(min_length=3, max_length=2000)


class FlagIn(Reason):
    kind: FlagKind


@router.post("/media/{media_id}/flags", response_model=RetentionPublic)
def flag(
    media_id: str, body: FlagIn, session: SessionDep, user: CurrentUser, store: StoreDep, addr: ClientAddr
) -> RetentionPublic:
    return actions.flag(session, store, user, media_id, body.kind, body.reason, client_addr=addr)


@router.post(
    "/media/{media_id}/flags/{kind}/clear",
    response_model=RetentionPublic | ApprovalPublic,
    responses={
        202: {"model": ApprovalPublic, "description": "a permanent flag: the request awaits approval"}
    },
)
def unflag(
    media_id: str,
    kind: FlagKind,
    body: Reason,
    session: SessionDep,
    user: CurrentUser,
    store: StoreDep,
    addr: ClientAddr,
    response: Response,
) -> RetentionPublic | ApprovalPublic:
    """Clear a flag. A flag that keeps the item permanently answers 202 with the approval request:
    a second person (another records manager, or an administrator) approves it at
    ``POST /api/v1/approvals/{id}/approve``."""
    out = actions.unflag(session, store, user, media_id, kind, body.reason, client_addr=addr)
    if isinstance(out, RetentionPublic):
        return out
    response.status_code = 202
    return approvals.public(out)


class ReviewIn(BaseModel):
    note: str = Field(default="", max_length=2000)


@router.post("/media/{media_id}/review", response_model=RetentionPublic)
def review(
    media_id: str, body: ReviewIn, session: SessionDep, user: CurrentUser, store: StoreDep, addr: ClientAddr
) -> RetentionPublic:
    """A reviewer records that they looked (releases the recorder's "important" mark)."""
    return actions.review(session, store, user, media_id, body.note, client_addr=addr)


@router.post("/media/{media_id}/holds", response_model=RetentionPublic, status_code=201)
def hold(
    media_id: str, body: Reason, session: SessionDep, user: CurrentUser, store: StoreDep, addr: ClientAddr
) -> RetentionPublic:
    return actions.hold(session, store, user, media_id, body.reason, client_addr=addr)


@router.post("/holds/{hold_id}/release", response_model=ApprovalPublic, status_code=202)
def release(
    hold_id: int, body: Reason, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> ApprovalPublic:
    """Ask to lift a hold (records managers); another records manager approves it."""
    return approvals.public(actions.release(session, user, hold_id, body.reason, client_addr=addr))


# The policy answers as the policy document: None-valued fields left out, as in its JSON file.
@router.get("/retention/policy", response_model=Policy, response_model_exclude_none=True)
def get_policy(session: SessionDep, user: CurrentUser) -> Policy:
    return actions.policy(session, user)


class PolicyIn(Reason):
    policy: dict[str, Any]


@router.put("/retention/policy", response_model=ApprovalPublic, status_code=202)
def put_policy(body: PolicyIn, session: SessionDep, user: CurrentUser, addr: ClientAddr) -> ApprovalPublic:
    """Ask for a new version of the policy (422 below the legal minimums, nothing stored); installed
    when another records manager or an administrator approves it."""
    return approvals.public(actions.set_policy(session, user, body.policy, body.reason, client_addr=addr))


@router.get("/retention/report", response_model=RetentionReportPublic)
def report(session: SessionDep, user: CurrentUser, days: int = 30) -> RetentionReportPublic:
    """What becomes deletable within `days` (default 30): for records managers."""
    return actions.report(session, user, days)

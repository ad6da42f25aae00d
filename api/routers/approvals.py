"""Two-person approval (issue 10, finding 4): the requests, and approving, rejecting, withdrawing one."""

from __future__ import annotations

from fastapi import APIRouter

import retention.approvals  # noqa: F401  (registers retention's kinds; cases register theirs on import)
from api.deps import ClientAddr, CurrentUser, DispatcherDep, SessionDep, StoreDep
from archive.approvals import services as approvals
from archive.approvals.models import ApprovalKind, ApprovalPublic, ApprovalState, DecisionIn
from archive.cases import services as _cases  # noqa: F401  (registers the unlink kind)

router = APIRouter(prefix="/api/v1/approvals", tags=["two-person approval"])


@router.get("", response_model=list[ApprovalPublic])
def requests(
    session: SessionDep,
    user: CurrentUser,
    state: ApprovalState | None = None,
    kind: ApprovalKind | None = None,
) -> list[ApprovalPublic]:
    """Your own requests and those your role may decide (auditors: all), oldest first."""
    return [approvals.public(r) for r in approvals.list_requests(session, user, state=state, kind=kind)]


@router.get("/{request_id}", response_model=ApprovalPublic)
def one(request_id: int, session: SessionDep, user: CurrentUser) -> ApprovalPublic:
    return approvals.public(approvals.get(session, user, request_id))


@router.post("/{request_id}/approve", response_model=ApprovalPublic)
def approve(
    request_id: int,
    body: DecisionIn,
    session: SessionDep,
    user: CurrentUser,
    addr: ClientAddr,
    store: StoreDep,
    dispatcher: DispatcherDep,
) -> ApprovalPublic:
    """Approve someone else's request: what it asks is carried out in the same transaction."""
    deps = approvals.Deps(store=store, dispatcher=dispatcher, addr=addr)
    return approvals.public(
        approvals.decide(session, user, request_id, approve=True, reason=body.reason, deps=deps)
    )


@router.post("/{request_id}/reject", response_model=ApprovalPublic)
def reject(
    request_id: int, body: DecisionIn, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> ApprovalPublic:
    """Reject someone else's request, with a reason; nothing is carried out."""
    deps = approvals.Deps(addr=addr)
    return approvals.public(
        approvals.decide(session, user, request_id, approve=False, reason=body.reason, deps=deps)
    )


@router.post("/{request_id}/cancel", response_model=ApprovalPublic)
def cancel(
    request_id: int, body: DecisionIn, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> ApprovalPublic:
    """Withdraw your own pending request."""
    return approvals.public(approvals.cancel(session, user, request_id, body.reason, addr=addr))

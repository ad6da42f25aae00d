"""Copy-out requests and their approval (调取审批)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ClientAddr, CurrentUser, SessionDep
from archive.copyout import services as copyout
from archive.copyout.models import CopyOutCreate, CopyOutPublic, Decision, RequestState

router = APIRouter(prefix="/api/v1/copyout", tags=["copy-out approval"])


@router.post("", response_model=CopyOutPublic, status_code=201)
def request(body: CopyOutCreate, session: SessionDep, user: CurrentUser, addr: ClientAddr) -> CopyOutPublic:
    """Ask to export a case or download an original for use outside the archive, with the purpose."""
    return copyout.public(copyout.request(session, user, body, addr=addr))


@router.get("", response_model=list[CopyOutPublic])
def requests(
    session: SessionDep, user: CurrentUser, state: RequestState | None = None
) -> list[CopyOutPublic]:
    """Approvers and auditors see every request; others their own."""
    return [copyout.public(r) for r in copyout.requests(session, user, state=state)]


@router.post("/{request_id}/approve", response_model=CopyOutPublic)
def approve(
    request_id: int, body: Decision, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> CopyOutPublic:
    """Approve another person's request (approver role; never your own)."""
    return copyout.public(
        copyout.decide(session, user, request_id, approve=True, reason=body.reason, addr=addr)
    )


@router.post("/{request_id}/refuse", response_model=CopyOutPublic)
def refuse(
    request_id: int, body: Decision, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> CopyOutPublic:
    return copyout.public(
        copyout.decide(session, user, request_id, approve=False, reason=body.reason, addr=addr)
    )

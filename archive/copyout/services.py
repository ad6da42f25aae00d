"""Request, approve or refuse, and use a copy-out approval.

Four eyes: the requester names the purpose; a second person with the approver role decides; the
requester can never approve their own request. Using an approval (the export or the download itself)
is logged with both names, and the export names them in ``case.json``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, actor, authorize, can
from archive.accounts.models import User
from archive.cases.models import Case
from archive.clock import Clock, utcnow
from archive.copyout.errors import AlreadyDecided, InvalidRequest, NotApproved, OwnRequest
from archive.copyout.models import (
    LABELS_ZH,
    CopyKind,
    CopyOutCreate,
    CopyOutPublic,
    CopyOutRequest,
    RequestState,
)
from archive.db import session_scope
from archive.errors import NotFound
from archive.i18n import _
from archive.media.models import Media


def request(
    session: Session, user: User, data: CopyOutCreate, *, addr: str = "", clock: Clock = utcnow
) -> CopyOutRequest:
    authorize(user, Permission.COPYOUT_REQUEST)
    purpose = data.purpose.strip()
    if not purpose:
        raise InvalidRequest(_("a copy-out request needs its purpose"))
    exists = session.get(Case if data.kind is CopyKind.CASE_EXPORT else Media, data.subject_id)
    if exists is None:
        raise InvalidRequest(_("no {kind} subject {id}").format(kind=data.kind, id=data.subject_id[:40]))
    row = CopyOutRequest(
        kind=data.kind,
        subject_id=data.subject_id,
        purpose=purpose,
        requested_by=user.name,
        requested_at=clock(),
    )
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="copyout.request",
        subject_type="case" if data.kind is CopyKind.CASE_EXPORT else "media",
        subject_id=data.subject_id,
        client_addr=addr,
        clock=clock,
        details={"request": row.id, "kind": data.kind, "purpose": purpose},
    )
    return row


def decide(
    session: Session,
    user: User,
    request_id: int,
    *,
    approve: bool,
    reason: str = "",
    addr: str = "",
    clock: Clock = utcnow,
) -> CopyOutRequest:
    authorize(user, Permission.COPYOUT_APPROVE)
    row = session.get(CopyOutRequest, request_id)
    if row is None:
        raise NotFound(_("no copy-out request {id}").format(id=request_id))
    if row.requested_by == user.name:
        raise OwnRequest(_("the requester cannot approve or refuse their own request"))
    if row.state is not RequestState.PENDING:
        raise AlreadyDecided(_("request {id} is already {state}").format(id=request_id, state=row.state))
    if not approve and not reason.strip():
        raise InvalidRequest(_("a refusal needs a reason"))
    row.state = RequestState.APPROVED if approve else RequestState.REFUSED
    row.decided_by, row.decided_at, row.decision_reason = user.name, clock(), reason.strip()
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="copyout.approve" if approve else "copyout.refuse",
        subject_type="case" if row.kind is CopyKind.CASE_EXPORT else "media",
        subject_id=row.subject_id,
        client_addr=addr,
        clock=clock,
        details={"request": row.id, "requested_by": row.requested_by, "reason": row.decision_reason},
    )
    return row


def use(
    session: Session,
    user: User,
    request_id: int | None,
    kind: CopyKind,
    subject_id: str,
    *,
    addr: str = "",
    clock: Clock = utcnow,
) -> CopyOutRequest:
    """The approval the caller holds for this export or download, or 403 naming what is missing."""
    if request_id is None:
        raise NotApproved(
            _("a {kind} needs an approved copy-out request (POST /api/v1/copyout, then copyout=<id>)").format(
                kind=kind
            )
        )
    row = session.get(CopyOutRequest, request_id)
    if (
        row is None
        or row.requested_by != user.name
        or row.kind is not kind
        or row.subject_id != subject_id
        or row.state is not RequestState.APPROVED
    ):
        raise NotApproved(
            _("copy-out request {id} is not an approved request of yours for this {kind}").format(
                id=request_id, kind=kind
            )
        )
    row.used_count += 1
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="copyout.use",
        subject_type="case" if kind is CopyKind.CASE_EXPORT else "media",
        subject_id=subject_id,
        client_addr=addr,
        clock=clock,
        details={"request": row.id, "purpose": row.purpose, "approved_by": row.decided_by},
    )
    return row


def requests(session: Session, user: User, *, state: RequestState | None = None) -> list[CopyOutRequest]:
    """Approvers and auditors see every request; others see their own."""
    stmt = select(CopyOutRequest)
    if not (can(user, Permission.COPYOUT_APPROVE) or can(user, Permission.OVERSIGHT)):
        stmt = stmt.where(CopyOutRequest.requested_by == user.name)
    if state:
        stmt = stmt.where(CopyOutRequest.state == state)
    return list(session.exec(stmt.order_by(col(CopyOutRequest.id))))


def public(row: CopyOutRequest) -> CopyOutPublic:
    return CopyOutPublic(**row.model_dump(exclude={"state"}), state=row.state, state_zh=LABELS_ZH[row.state])


def approve_export(
    engine: Engine,
    user: User,
    case_key: str,
    agency: str | None,
    request_id: int | None,
    addr: str,
    *,
    with_addresses: bool = False,
) -> dict[str, Any] | None:
    """Before a case export through the API: the approved request it uses (logged as ``copyout.use``
    in its own transaction, so the use is on record even if building the export fails), as the export
    names it in ``case.json``. None when approval is switched off. An export the user may not make as
    asked (``with_addresses`` without the audit permission) is refused before the approval is used."""
    from archive.config import get_settings
    from archive.export.services import check_request, find_case

    check_request(user, with_addresses=with_addresses)
    if not get_settings().copyout_required:
        return None
    with session_scope(engine) as session:
        case = find_case(session, case_key, agency=agency, user=user)
        row = use(session, user, request_id, CopyKind.CASE_EXPORT, case.id, addr=addr)
        return {
            "request": row.id,
            "purpose": row.purpose,
            "requested_by": row.requested_by,
            "requested_at": row.requested_at.isoformat(),
            "approved_by": row.decided_by,
            "approved_at": row.decided_at.isoformat() if row.decided_at else None,
        }


def approve_download(
    session: Session, user: User, media_id: str, request_id: int | None, *, addr: str = ""
) -> None:
    """Before an original's download through the API (the caller has checked the item is visible)."""
    from archive.config import get_settings

    if get_settings().copyout_required:
        use(session, user, request_id, CopyKind.ORIGINAL_DOWNLOAD, media_id, addr=addr)

"""Restricted records: marks, grants, and reads with a stated purpose."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api import viewsession
from api.deps import ClientAddr, CurrentUser, SessionDep
from archive.cases import services as cases
from archive.cases.models import RecordPublic
from archive.restricted import services as restricted
from archive.restricted.models import GrantCreate, GrantPublic, MarkCreate, MarkPublic, SubjectKind

router = APIRouter(prefix="/api/v1/restricted", tags=["restricted records"])


class Lift(BaseModel):
    reason: str = Field(max_length=2000)


@router.post("/marks", response_model=MarkPublic, status_code=201)
def mark(body: MarkCreate, session: SessionDep, user: CurrentUser, addr: ClientAddr) -> MarkPublic:
    """Mark a record, attachment or recording as state secret, trade secret or personal privacy."""
    return restricted.mark_public(restricted.mark(session, user, body, addr=addr))


@router.post("/marks/{mark_id}/lift", response_model=MarkPublic)
def lift(mark_id: int, body: Lift, session: SessionDep, user: CurrentUser, addr: ClientAddr) -> MarkPublic:
    return restricted.mark_public(restricted.lift(session, user, mark_id, body.reason, addr=addr))


@router.get("/marks", response_model=list[MarkPublic])
def marks(
    session: SessionDep, user: CurrentUser, case_id: Annotated[str | None, Query(max_length=36)] = None
) -> list[MarkPublic]:
    return [restricted.mark_public(m) for m in restricted.marks(session, user, case_id=case_id)]


@router.post("/grants", response_model=GrantPublic, status_code=201)
def grant(body: GrantCreate, session: SessionDep, user: CurrentUser, addr: ClientAddr) -> GrantPublic:
    """Grant a named user a marked item, or every marked item of a case."""
    return restricted.grant_public(restricted.grant(session, user, body, addr=addr))


@router.post("/grants/{grant_id}/revoke", response_model=GrantPublic)
def revoke(grant_id: int, session: SessionDep, user: CurrentUser, addr: ClientAddr) -> GrantPublic:
    return restricted.grant_public(restricted.revoke(session, user, grant_id, addr=addr))


@router.get("/grants", response_model=list[GrantPublic])
def grants(session: SessionDep, user: CurrentUser) -> list[GrantPublic]:
    return [restricted.grant_public(g) for g in restricted.grants(session, user)]


@router.get("/mine", response_model=list[GrantPublic])
def mine(session: SessionDep, user: CurrentUser) -> list[GrantPublic]:
    """The grants you hold."""
    return [restricted.grant_public(g) for g in restricted.my_grants(session, user)]


@router.get("/cases/{case_id}/records/{record_id}", response_model=list[RecordPublic])
def read_record(
    case_id: str,
    record_id: str,
    session: SessionDep,
    user: CurrentUser,
    addr: ClientAddr,
    purpose: Annotated[str, Query(max_length=2000)] = "",
) -> list[RecordPublic]:
    """Read a restricted record (every version) with a stated purpose; 404 without a grant."""
    return [
        cases.record_public(r)
        for r in restricted.read_record(session, user, case_id, record_id, purpose, addr=addr)
    ]


def media_gate(
    request: Request,
    session: SessionDep,
    addr: ClientAddr,
    purpose: Annotated[
        str | None,
        Query(max_length=2000, description="Why you read a restricted item (needed with a grant; logged)"),
    ] = None,
) -> None:
    """Router-level dependency of /api/v1/media/{media_id}/...: a marked recording or attachment is
    404 without a grant, and needs ``purpose=...`` with one; the read is logged with its purpose.
    Unmarked items pass without a look at the caller, so the review page's players (which stream with
    a cookie, not a bearer token) are unaffected; for a marked one the caller is whoever the route
    would accept (bearer token or the review cookie)."""
    media_id = request.path_params.get("media_id")
    if not media_id or restricted.active_mark(session, SubjectKind.MEDIA, str(media_id)) is None:
        return
    user = viewsession.viewer(request, session)
    what = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    restricted.check_read(
        session,
        user,
        SubjectKind.MEDIA,
        str(media_id),
        purpose,
        addr=addr,
        action="media" if what == media_id else what,
    )

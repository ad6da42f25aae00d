"""The recording-item list, the activity of a record, and the coverage of a case's records."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import ClientAddr, CurrentUser, SessionDep
from archive.coverage import services as coverage
from archive.coverage.models import (
    ActivitySet,
    CaseCoveragePublic,
    ItemListPublic,
    RecordActivityPublic,
)

router = APIRouter(prefix="/api/v1", tags=["whole-process recording"])


class ItemListSet(BaseModel):
    body: dict[str, Any]
    reason: str = Field(max_length=2000)


@router.get("/recording-items", response_model=dict[str, Any])
def get_item_list(session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """The recording-item list in force (音像记录事项清单)."""
    return coverage.get_list(session, user).to_json()


@router.get("/recording-items/versions", response_model=list[ItemListPublic])
def item_list_versions(session: SessionDep, user: CurrentUser) -> list[ItemListPublic]:
    """Every version of the list that was ever in force, with who set it and why."""
    return coverage.list_versions(session, user)


@router.put("/recording-items", response_model=dict[str, Any])
def set_item_list(
    body: ItemListSet, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> dict[str, Any]:
    """Store the next version of the list (records managers, admins); a reason is required."""
    return coverage.set_list(session, user, body.body, reason=body.reason, addr=addr).to_json()


@router.put("/cases/{case_id}/records/{record_id}/activity", response_model=RecordActivityPublic)
def set_activity(
    case_id: str, record_id: str, body: ActivitySet, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> RecordActivityPublic:
    """Say which activity of the list a record documents; ``no_recording_reason`` claims the list's
    text-only exception (only for activities that allow it)."""
    row = coverage.set_activity(
        session, user, case_id, record_id, body.activity, reason=body.no_recording_reason, addr=addr
    )
    return RecordActivityPublic.model_validate(row.model_dump())


@router.get("/cases/{case_id}/coverage", response_model=CaseCoveragePublic)
def case_coverage(
    case_id: str,
    session: SessionDep,
    user: CurrentUser,
    addr: ClientAddr,
    purpose: Annotated[str | None, Query(max_length=2000)] = None,
) -> CaseCoveragePublic:
    """Per record: ``status`` (covered, gaps, missing, not-required, missing-with-reason) and the gap
    spans, on the corrected clock. Restricted items the caller holds a grant for count with ``purpose``."""
    return coverage.case_coverage(session, user, case_id, addr=addr, purpose=purpose)

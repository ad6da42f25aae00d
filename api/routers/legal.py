"""Legal review of major enforcement decisions (重大执法决定法制审核): thin routes over
:mod:`archive.legal.services`. The gate itself needs no route: it holds at every flush."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import ClientAddr, CurrentUser, SessionDep
from archive.config import get_settings
from archive.legal import services as legal
from archive.legal.models import (
    CataloguePublic,
    EscalationPublic,
    LegalReviewPublic,
    MarkPublic,
    OpinionPublic,
    OverdueList,
    SubmissionPublic,
)

router = APIRouter(prefix="/api/v1", tags=["legal review"])

_Ref = dict[str, Any]


class SubmissionCreate(BaseModel):
    """The proposed decision (拟作出的决定). References name the case's own record versions
    (``{"record_id", "version"}``) or linked media (``{"media_id"}``)."""

    decision_kind: str = Field(min_length=1, max_length=64)
    facts: str = Field(min_length=1, max_length=100_000)
    legal_basis: list[Annotated[str, Field(max_length=500)]] = Field(max_length=100)
    evidence: list[_Ref] = Field(max_length=500)
    materials: dict[str, list[_Ref]] = Field(default_factory=dict, max_length=50)
    amounts: dict[str, str] = Field(default_factory=dict, max_length=20)
    hearing: bool = False
    attest: bool = False
    amends: int | None = Field(default=None, ge=1, description="the current version, when amending it")


class MarkCreate(BaseModel):
    mark: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2000)


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class AnswerIn(BaseModel):
    result: str = Field(max_length=16, description="pass, fail or n/a")
    note: str = Field(default="", max_length=4000)


class AnswerOut(BaseModel):
    submission_id: str
    point: str
    result: str
    note: str
    reviewer: str


class OpinionIn(BaseModel):
    outcome: str = Field(max_length=16, description="approve, return or disapprove")
    reasons: str = Field(max_length=100_000)
    attest: bool = False
    authority: str | None = Field(default=None, max_length=200)
    answered_by: str | None = Field(default=None, max_length=200)
    expected_lock_version: int | None = None


class CollectiveIn(BaseModel):
    outcome: str = Field(max_length=32, description="uphold-opinion, resubmit or withdraw")
    reasons: str = Field(max_length=100_000)
    participants: list[Annotated[str, Field(max_length=200)]] = Field(max_length=100)


class CatalogueIn(BaseModel):
    body: dict[str, Any]
    reason: str = Field(min_length=1, max_length=2000)


def _tz() -> str:
    return get_settings().timezone


@router.get("/cases/{case_id}/legal-review", response_model=LegalReviewPublic)
def review_status(case_id: str, session: SessionDep, user: CurrentUser) -> LegalReviewPublic:
    """Whether the case needs legal review and which catalogue rule says so, where the review stands
    (``status``), its checklist, opinion, deadline (``due``, agency-local) and history."""
    return legal.review_status(session, user, case_id, timezone=_tz())


@router.post("/cases/{case_id}/legal-review/submissions", response_model=SubmissionPublic, status_code=201)
def submit(
    case_id: str, body: SubmissionCreate, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> SubmissionPublic:
    """Submit the proposed decision, or amend the current one (``amends``: its version). Amending an
    approved version voids the approval."""
    data = legal.ProposedDecision(**body.model_dump(exclude={"amends"}))
    sub = legal.submit(session, user, case_id, data, amends=body.amends, timezone=_tz(), addr=addr)
    return legal.submission_public(sub)


@router.post("/cases/{case_id}/legal-review/marks", response_model=MarkPublic, status_code=201)
def mark(
    case_id: str, body: MarkCreate, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> MarkPublic:
    """Mark the case major by hand (major-public-interest, major-social-impact, major-rights, complex)."""
    return legal.mark_public(legal.mark_case(session, user, case_id, body.mark, body.reason, addr=addr))


@router.get("/legal-reviews", response_model=OverdueList)
def pending_reviews(
    session: SessionDep,
    user: CurrentUser,
    overdue: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> OverdueList:
    """Pending reviews, oldest deadline first; ``overdue=true``: only those past their last day."""
    return legal.overdue(session, user, limit=limit, offset=offset, overdue_only=overdue, timezone=_tz())


@router.post("/legal-reviews/{submission_id}/withdraw", response_model=SubmissionPublic)
def withdraw(
    submission_id: str, body: Reason, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> SubmissionPublic:
    return legal.submission_public(legal.withdraw(session, user, submission_id, body.reason, addr=addr))


@router.put("/legal-reviews/{submission_id}/answers/{point}", response_model=AnswerOut)
def answer(
    submission_id: str, point: str, body: AnswerIn, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> AnswerOut:
    """Answer one checklist point (legal reviewers)."""
    row = legal.answer(session, user, submission_id, point, body.result, body.note, addr=addr)
    return AnswerOut(
        submission_id=row.submission_id,
        point=row.point,
        result=row.result,
        note=row.note,
        reviewer=row.reviewer,
    )


@router.post("/legal-reviews/{submission_id}/opinion", response_model=OpinionPublic, status_code=201)
def opinion(
    submission_id: str, body: OpinionIn, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> OpinionPublic:
    """The legal office's opinion: approve (binds the version's SHA-256), return, or disapprove."""
    row = legal.decide(session, user, submission_id, legal.OpinionInput(**body.model_dump()), addr=addr)
    return legal.opinion_public(row)


@router.post("/legal-reviews/{submission_id}/escalation", response_model=EscalationPublic, status_code=201)
def escalate(
    submission_id: str, body: Reason, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> EscalationPublic:
    """The handling side disagrees with a return or disapproval: collective discussion decides."""
    return legal.escalation_public(legal.escalate(session, user, submission_id, body.reason, addr=addr))


@router.post("/legal-reviews/{submission_id}/collective", response_model=EscalationPublic)
def collective(
    submission_id: str, body: CollectiveIn, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> EscalationPublic:
    """An approver records the outcome of collective discussion (it never replaces the review)."""
    row = legal.record_collective(
        session, user, submission_id, body.outcome, body.reasons, body.participants, addr=addr
    )
    return legal.escalation_public(row)


@router.get("/legal/catalogue", response_model=CataloguePublic)
def catalogue(session: SessionDep, user: CurrentUser) -> CataloguePublic:
    return legal.catalogue_public(session, user)


@router.put("/legal/catalogue", response_model=CataloguePublic)
def set_catalogue(
    body: CatalogueIn, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> CataloguePublic:
    """Install the next catalogue version (admins), with a reason."""
    row = legal.set_catalogue(session, user, body.body, body.reason, addr=addr)
    return CataloguePublic.model_validate(row.model_dump())

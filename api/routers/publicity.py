"""Enforcement publicity, the authenticated side: roster, advance documents, decisions (register,
redact, approve, withdraw), due lists, webhook deliveries and yearly reports.

Every route parses, calls one service in archive.publicity, and answers with a ``*Public`` model;
the services decide who may do what. Webhook tasks are sent only after the commit.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from api.deps import ClientAddr, CurrentUser, DispatcherDep, KeyringDep, SessionDep
from archive.errors import TooLarge
from archive.i18n import _
from archive.publicity import decisions, documents, inspections, performance, report, roster, webhooks
from archive.publicity.models import (
    DecisionCategory,
    DecisionPublic,
    DecisionState,
    DeliveryPublic,
    DeliveryState,
    DocumentKind,
    DocumentPublic,
    DueList,
    InspectionOutcome,
    InspectionPublic,
    InspectionState,
    PartyKind,
    PerformancePublic,
    PerformanceStatus,
    QualificationFlagPublic,
    RedactionPublic,
    ReportPublic,
    RosterPublic,
    WithdrawalGround,
)

router = APIRouter(prefix="/api/v1/publicity", tags=["publicity"])
MAX_CSV_BYTES = 4 * 1024**2  # the app's body limit (api.app.MAX_JSON_BODY)


# --------------------------------------------------------------------------- roster


class RosterIn(BaseModel):
    officer: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    unit: str = Field(min_length=1, max_length=200)
    post: str = Field(default="", max_length=200)
    badge_no: str = Field(default="", max_length=64)
    certificate_no: str = Field(min_length=1, max_length=64)
    category: str = Field(min_length=1, max_length=200)
    area: str = Field(min_length=1, max_length=200)
    valid_from: date
    valid_to: date

    def to_input(self) -> roster.RosterInput:
        return roster.RosterInput(**self.model_dump())


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class ImportOut(BaseModel):
    added: int
    updated: int
    unchanged: int


@router.get("/roster", response_model=list[RosterPublic])
def list_roster(session: SessionDep, user: CurrentUser, officer: str | None = None) -> list[RosterPublic]:
    return [RosterPublic.model_validate(e) for e in roster.entries(session, user, officer=officer)]


@router.post("/roster", response_model=RosterPublic, status_code=201)
def add_roster(body: RosterIn, session: SessionDep, user: CurrentUser, addr: ClientAddr) -> RosterPublic:
    """Add one certificate (admins)."""
    return RosterPublic.model_validate(roster.add_entry(session, user, body.to_input(), addr=addr))


@router.put("/roster/{entry_id}", response_model=RosterPublic)
def correct_roster(
    entry_id: int, body: RosterIn, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> RosterPublic:
    """Correct an entry (admins); before and after are logged."""
    return RosterPublic.model_validate(
        roster.update_entry(session, user, entry_id, body.to_input(), addr=addr)
    )


@router.post("/roster/{entry_id}/revoke", response_model=RosterPublic)
def revoke_roster(
    entry_id: int, body: Reason, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> RosterPublic:
    return RosterPublic.model_validate(roster.revoke_entry(session, user, entry_id, body.reason, addr=addr))


@router.post("/roster/import", response_model=ImportOut)
def import_roster(
    data: Annotated[bytes, Body(media_type="text/csv")],
    session: SessionDep,
    user: CurrentUser,
    addr: ClientAddr,
) -> ImportOut:
    """Import a CSV file (the request body, ``text/csv``; UTF-8 or GB18030). A bad row refuses the whole
    file, naming row and field; nothing is imported."""
    if len(data) > MAX_CSV_BYTES:
        raise TooLarge(_("a roster file is at most {n} bytes").format(n=MAX_CSV_BYTES))
    result = roster.import_csv(session, user, data, addr=addr)
    return ImportOut(added=result.added, updated=result.updated, unchanged=result.unchanged)


@router.get("/qualification-flags", response_model=list[QualificationFlagPublic])
def qualification_flags(
    session: SessionDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[QualificationFlagPublic]:
    """Recordings docked by officers without a valid certificate on their date (archived, flagged)."""
    return [
        QualificationFlagPublic.model_validate(f)
        for f in roster.flags(session, user, limit=limit, offset=offset)
    ]


# --------------------------------------------------------------------------- documents


class DocumentIn(BaseModel):
    key: str = Field(min_length=1, max_length=64)
    kind: DocumentKind
    title: str = Field(min_length=1, max_length=500)
    body: str = Field(min_length=1, max_length=documents.MAX_BODY)
    note: str = Field(default="", max_length=2000)


class Approval(BaseModel):
    sha256: str = Field(min_length=64, max_length=64)


@router.get("/documents", response_model=list[DocumentPublic])
def list_documents(session: SessionDep, user: CurrentUser, key: str | None = None) -> list[DocumentPublic]:
    return [documents.to_public(d) for d in documents.versions(session, user, key)]


@router.post("/documents", response_model=DocumentPublic, status_code=201)
def write_document(
    body: DocumentIn, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> DocumentPublic:
    """A new version (a draft) of an advance document."""
    doc = documents.write(
        session, user, body.key, body.kind, body.title, body.body, note=body.note, addr=addr
    )
    return documents.to_public(doc)


@router.post("/documents/{key}/versions/{version}/approve", response_model=DocumentPublic)
def approve_document(
    key: str,
    version: int,
    body: Approval,
    session: SessionDep,
    user: CurrentUser,
    dispatcher: DispatcherDep,
    addr: ClientAddr,
) -> DocumentPublic:
    """Release a version: the SHA-256 must be the version's (title and body, RFC 8785 JSON)."""
    doc, _previous, _sent = documents.approve(
        session, user, key, version, body.sha256, dispatcher=dispatcher, addr=addr
    )
    return documents.to_public(doc)


# --------------------------------------------------------------------------- decisions


class DecisionIn(BaseModel):
    case_id: str = Field(max_length=36)
    record_id: str | None = Field(default=None, max_length=36)
    category: DecisionCategory
    decided_on: date
    party_kind: PartyKind
    party_name: str = Field(min_length=1, max_length=200)
    conclusion: str = Field(min_length=1, max_length=20_000)
    document_no: str = Field(default="", max_length=100)
    persons: list[Annotated[str, Field(max_length=50)]] = Field(default_factory=list, max_length=100)


class RedactionIn(BaseModel):
    text: str | None = Field(default=None, max_length=400_000)


class OverrideIn(BaseModel):
    value: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2000)


class ApproveIn(BaseModel):
    version: int = Field(ge=1)
    sha256: str = Field(min_length=64, max_length=64)
    overrides: list[OverrideIn] = Field(default_factory=list, max_length=100)


class WithdrawIn(BaseModel):
    ground: WithdrawalGround
    reason: str = Field(min_length=1, max_length=2000)
    withdrawn_on: date | None = None


@router.post("/decisions", response_model=DecisionPublic, status_code=201)
def register_decision(
    body: DecisionIn, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> DecisionPublic:
    """Register a case's decision for publication: its category, date, party and conclusion; the
    deadline follows (7 or 20 working days)."""
    d = decisions.register(session, user, decisions.DecisionInput(**body.model_dump()), addr=addr)
    return decisions.to_public(session, d)


@router.get("/decisions", response_model=list[DecisionPublic])
def list_decisions(
    session: SessionDep,
    user: CurrentUser,
    state: DecisionState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[DecisionPublic]:
    rows = decisions.listing(session, user, state=state, limit=limit, offset=offset)
    return [decisions.to_public(session, d) for d in rows]


@router.get("/due", response_model=DueList)
def due(
    session: SessionDep,
    user: CurrentUser,
    soon: Annotated[int | None, Query(ge=0, le=20)] = None,
) -> DueList:
    """Unpublished decisions past their deadline, and those due within ``soon`` working days."""
    return decisions.due(session, user, soon_days=soon)


@router.get("/decisions/{decision_id}", response_model=DecisionPublic)
def get_decision(decision_id: str, session: SessionDep, user: CurrentUser) -> DecisionPublic:
    return decisions.to_public(session, decisions.get(session, user, decision_id))


@router.post("/decisions/{decision_id}/redactions", response_model=RedactionPublic, status_code=201)
def draft_redaction(
    decision_id: str, body: RedactionIn, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> RedactionPublic:
    """A redacted version for review: made by the engine, or the publisher's edit (re-checked)."""
    r = decisions.draft_redaction(session, user, decision_id, text=body.text, addr=addr)
    return decisions.redaction_public(session, decisions.get(session, user, decision_id), r)


@router.get("/decisions/{decision_id}/redactions", response_model=list[RedactionPublic])
def list_redactions(
    decision_id: str, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> list[RedactionPublic]:
    """Every redacted version with its diff against the decision document (the read is logged)."""
    d = decisions.get(session, user, decision_id)
    rows = decisions.redactions(session, user, decision_id, addr=addr)
    return [decisions.redaction_public(session, d, r) for r in rows]


@router.post("/decisions/{decision_id}/approve", response_model=DecisionPublic)
def approve_decision(
    decision_id: str,
    body: ApproveIn,
    session: SessionDep,
    user: CurrentUser,
    dispatcher: DispatcherDep,
    addr: ClientAddr,
) -> DecisionPublic:
    """Publish the redacted version whose SHA-256 the publisher names (a later version corrects)."""
    overrides = [decisions.Override(o.value, o.reason) for o in body.overrides]
    done = decisions.approve(
        session,
        user,
        decision_id,
        body.version,
        body.sha256,
        overrides=overrides,
        dispatcher=dispatcher,
        addr=addr,
    )
    return decisions.to_public(session, done.decision)


@router.post("/decisions/{decision_id}/withdraw", response_model=DecisionPublic)
def withdraw_decision(
    decision_id: str,
    body: WithdrawIn,
    session: SessionDep,
    user: CurrentUser,
    dispatcher: DispatcherDep,
    addr: ClientAddr,
) -> DecisionPublic:
    """Take a decision down at once (revoked, annulled, remade); its notice stays public."""
    done = decisions.withdraw(
        session,
        user,
        decision_id,
        body.ground,
        body.reason,
        withdrawn_on=body.withdrawn_on,
        dispatcher=dispatcher,
        addr=addr,
    )
    return decisions.to_public(session, done.decision)


# --------------------------------------------------------------------------- performance (A10)


class PerformanceIn(BaseModel):
    status: PerformanceStatus
    as_of: date
    note: str = Field(default="", max_length=performance.MAX_NOTE)


@router.post("/decisions/{decision_id}/performance", response_model=PerformancePublic, status_code=201)
def record_performance(
    decision_id: str,
    body: PerformanceIn,
    session: SessionDep,
    user: CurrentUser,
    dispatcher: DispatcherDep,
    addr: ClientAddr,
) -> PerformancePublic:
    """Record how the decision has been carried out (履行情况), as established on ``as_of`` (not in the
    future, not before the decision): a new version; the history is kept. The note stays internal."""
    row = performance.record(
        session, user, decision_id, body.status, body.as_of, note=body.note, dispatcher=dispatcher, addr=addr
    )
    return performance.to_public(session, row)


@router.get("/decisions/{decision_id}/performance", response_model=list[PerformancePublic])
def performance_history(decision_id: str, session: SessionDep, user: CurrentUser) -> list[PerformancePublic]:
    """Every recorded version of the decision's performance, oldest first (the last is current)."""
    return [performance.to_public(session, r) for r in performance.history(session, user, decision_id)]


# --------------------------------------------------------------------------- random inspections (A10)


class InspectionIn(BaseModel):
    item: str = Field(min_length=1, max_length=500)
    party_kind: PartyKind
    party_name: str = Field(min_length=1, max_length=200)
    inspected_on: date
    result: InspectionOutcome
    summary: str = Field(min_length=1, max_length=inspections.MAX_SUMMARY)


class InspectionWithdrawIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/inspections", response_model=InspectionPublic, status_code=201)
def register_inspection(
    body: InspectionIn, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> InspectionPublic:
    """Register a random-inspection result (双随机抽查结果) as a draft: the answer shows what the
    public would see (``public_party``, ``public_summary``) and the SHA-256 an approval names."""
    row = inspections.register(session, user, inspections.InspectionInput(**body.model_dump()), addr=addr)
    return inspections.to_public(row)


@router.get("/inspections", response_model=list[InspectionPublic])
def list_inspections(
    session: SessionDep,
    user: CurrentUser,
    state: InspectionState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[InspectionPublic]:
    rows = inspections.listing(session, user, state=state, limit=limit, offset=offset)
    return [inspections.to_public(r) for r in rows]


@router.get("/inspections/{inspection_id}", response_model=InspectionPublic)
def get_inspection(inspection_id: str, session: SessionDep, user: CurrentUser) -> InspectionPublic:
    return inspections.to_public(inspections.get(session, user, inspection_id))


@router.post("/inspections/{inspection_id}/approve", response_model=InspectionPublic)
def approve_inspection(
    inspection_id: str,
    body: Approval,
    session: SessionDep,
    user: CurrentUser,
    dispatcher: DispatcherDep,
    addr: ClientAddr,
) -> InspectionPublic:
    """Publish a draft: the SHA-256 must be its public content's (RFC 8785 JSON), else 409."""
    row = inspections.approve(session, user, inspection_id, body.sha256, dispatcher=dispatcher, addr=addr)
    return inspections.to_public(row)


@router.post("/inspections/{inspection_id}/withdraw", response_model=InspectionPublic)
def withdraw_inspection(
    inspection_id: str,
    body: InspectionWithdrawIn,
    session: SessionDep,
    user: CurrentUser,
    dispatcher: DispatcherDep,
    addr: ClientAddr,
) -> InspectionPublic:
    """Take a published result down at once (it stays here, logged)."""
    row = inspections.withdraw(session, user, inspection_id, body.reason, dispatcher=dispatcher, addr=addr)
    return inspections.to_public(row)


# --------------------------------------------------------------------------- deliveries


class AttemptOut(BaseModel):
    attempt: int
    at: str
    status_code: int | None
    error: str
    duration_ms: int


@router.get("/deliveries", response_model=list[DeliveryPublic])
def list_deliveries(
    session: SessionDep,
    user: CurrentUser,
    state: DeliveryState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[DeliveryPublic]:
    rows = webhooks.listing(session, user, state=state, limit=limit, offset=offset)
    return [DeliveryPublic.model_validate(d) for d in rows]


@router.get("/deliveries/{delivery_id}/attempts", response_model=list[AttemptOut])
def delivery_attempts(delivery_id: str, session: SessionDep, user: CurrentUser) -> list[AttemptOut]:
    return [
        AttemptOut(
            attempt=a.attempt,
            at=a.at.isoformat(),
            status_code=a.status_code,
            error=a.error,
            duration_ms=a.duration_ms,
        )
        for a in webhooks.attempts_of(session, user, delivery_id)
    ]


@router.post("/deliveries/{delivery_id}/retry", response_model=DeliveryPublic)
def retry_delivery(
    delivery_id: str, session: SessionDep, user: CurrentUser, dispatcher: DispatcherDep, addr: ClientAddr
) -> DeliveryPublic:
    """Queue a failed delivery again."""
    row = webhooks.retry_failed(session, user, delivery_id, dispatcher=dispatcher, addr=addr)
    return DeliveryPublic.model_validate(row)


# --------------------------------------------------------------------------- reports


@router.post("/reports/{year}/draft", response_model=ReportPublic, status_code=201)
def draft_report(year: int, session: SessionDep, user: CurrentUser, keyring: KeyringDep) -> ReportPublic:
    """Count the year and sign a new draft version."""
    return report.to_public(report.draft(session, user, year, keyring))


@router.get("/reports/{year}", response_model=list[ReportPublic])
def report_versions(year: int, session: SessionDep, user: CurrentUser) -> list[ReportPublic]:
    return [report.to_public(r) for r in report.versions(session, user, year)]


@router.post("/reports/{year}/versions/{version}/publish", response_model=ReportPublic)
def publish_report(
    year: int,
    version: int,
    body: Approval,
    session: SessionDep,
    user: CurrentUser,
    keyring: KeyringDep,
    dispatcher: DispatcherDep,
    addr: ClientAddr,
) -> ReportPublic:
    """Publish a drafted version (the SHA-256 of its body's RFC 8785 JSON)."""
    r, _sent = report.publish(
        session, user, year, version, body.sha256, keyring, dispatcher=dispatcher, addr=addr
    )
    return report.to_public(r)

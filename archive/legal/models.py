"""Legal-review tables. Rows are history: a submission is never edited after it is made (an amendment
is the next version), answers and opinions are only added, and every step is also a custody event."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from archive.clock import utcnow
from archive.i18n import N_
from archive.models import enum_column, new_id


class ReviewStatus(StrEnum):
    """The case's legal-review status, as ``GET /api/v1/cases/{id}/legal-review`` reports it."""

    NOT_REQUIRED = "not-required"
    AWAITING_SUBMISSION = "awaiting-submission"
    PENDING = "pending"
    RETURNED = "returned"
    DISAPPROVED = "disapproved"
    ESCALATED = "escalated"
    APPROVED = "approved"
    VOIDED = "voided"


STATUS_LABELS: dict[ReviewStatus, tuple[str, str]] = {
    ReviewStatus.NOT_REQUIRED: (N_("Legal review not required"), "无需法制审核"),
    ReviewStatus.AWAITING_SUBMISSION: (N_("Awaiting the proposed decision"), "待报送审核"),
    ReviewStatus.PENDING: (N_("Under legal review"), "审核中"),
    ReviewStatus.RETURNED: (N_("Returned for more material"), "退回补充材料"),
    ReviewStatus.DISAPPROVED: (N_("Disapproved"), "不同意"),
    ReviewStatus.ESCALATED: (N_("Escalated to collective discussion"), "提交集体讨论"),
    ReviewStatus.APPROVED: (N_("Approved"), "审核通过"),
    ReviewStatus.VOIDED: (N_("Approval voided"), "审核通过已失效"),
}


class SubmissionState(StrEnum):
    PENDING = "pending"  # waiting for the legal office's opinion
    NOT_REQUIRED = "not-required"  # the catalogue needs no review for it
    APPROVED = "approved"
    RETURNED = "returned"
    DISAPPROVED = "disapproved"
    SUPERSEDED = "superseded"  # replaced by the next version before an approval
    VOIDED = "voided"  # was approved; the approval no longer stands (amended or withdrawn)
    WITHDRAWN = "withdrawn"


class Answer(StrEnum):
    PASS = "pass"  # noqa: S105 - a checklist answer, not a password
    FAIL = "fail"
    NOT_APPLICABLE = "n/a"


ANSWER_LABELS_ZH: dict[Answer, str] = {
    Answer.PASS: "符合",
    Answer.FAIL: "不符合",
    Answer.NOT_APPLICABLE: "不适用",
}


class Opinion(StrEnum):
    APPROVE = "approve"
    RETURN = "return"  # return for more material
    DISAPPROVE = "disapprove"


OPINION_LABELS: dict[Opinion, tuple[str, str]] = {
    Opinion.APPROVE: (N_("Approve"), "通过"),
    Opinion.RETURN: (N_("Return for more material"), "退回补充材料"),
    Opinion.DISAPPROVE: (N_("Disapprove"), "不同意"),
}


class CollectiveOutcome(StrEnum):
    """What collective discussion (集体讨论) decided. None of them replaces the review: a decision
    still needs an approval of the version decided."""

    UPHOLD_OPINION = "uphold-opinion"
    RESUBMIT = "resubmit"
    WITHDRAW = "withdraw"


COLLECTIVE_LABELS: dict[CollectiveOutcome, tuple[str, str]] = {
    CollectiveOutcome.UPHOLD_OPINION: (N_("The legal review opinion stands"), "维持法制审核意见"),
    CollectiveOutcome.RESUBMIT: (N_("Amend and submit again for review"), "修改后重新报送审核"),
    CollectiveOutcome.WITHDRAW: (N_("Withdraw the proposed decision"), "撤回拟作出的决定"),
}

SUBMITTER_ATTESTATION = (
    "I submit these materials as true, lawful and complete and answer for them "
    "(报送人对材料的真实性、合法性、完整性负责)."
)
REVIEWER_ATTESTATION = "I answer for this review opinion (审核人对审核意见负责)."


class LegalCatalogueVersion(SQLModel, table=True):
    __tablename__ = "legal_catalogues"
    version: int = Field(primary_key=True)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=160)
    reason: str = Field(max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)


class LegalCaseMark(SQLModel, table=True):
    """A case marked major by hand (major public interest, social impact, rights, complex)."""

    __tablename__ = "legal_case_marks"
    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="cases.id", index=True, max_length=36)
    mark: str = Field(max_length=64)
    reason: str = Field(max_length=2000)
    set_by: str = Field(max_length=160)
    set_at: datetime = Field(default_factory=utcnow)


class LegalSubmission(SQLModel, table=True):
    """One version of a case's proposed decision (拟作出的决定), as submitted for review."""

    __tablename__ = "legal_submissions"
    __table_args__ = (
        UniqueConstraint("case_id", "version", name="uq_legal_submission_version"),
        # The overdue list: pending submissions in (due, id) order, the list's own order, so a page is
        # read straight off the index and the count never touches decided rows (a partial index).
        Index(
            "ix_legal_submissions_pending_due",
            "due",
            "id",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="cases.id", index=True, max_length=36)
    version: int
    decision_kind: str = Field(max_length=64)
    amounts: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    legal_basis: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    facts: str = Field(sa_column=Column(Text, nullable=False))
    evidence: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    materials: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    hearing: bool = False
    marks: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    digest: str = Field(max_length=64)  # SHA-256 of the canonical proposed decision (see services.digest)
    required: bool
    rule_id: str | None = Field(default=None, max_length=64)
    matched_rules: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    higher_authority: bool = False
    catalogue_version: int
    state: SubmissionState = Field(sa_type=enum_column(SubmissionState))
    lock_version: int = 1  # bumped by every change of state: a concurrent second decision fails
    submitted_by: str = Field(max_length=160)
    submitted_at: datetime = Field(default_factory=utcnow)
    attestation: str = Field(max_length=500)
    due: date | None = None  # the last working day of the review time limit, agency-local
    calendar: str = Field(default="", max_length=64)  # which calendar data computed ``due``
    # ``due`` crosses a year the calendar did not know: provisional (every day of those years counted
    # as working, so never later than the real one), recomputed when the year is set (archive.workdays).
    due_provisional: bool = False
    due_missing_years: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    due_weekdays: date | None = None  # provisional only: the Monday-Friday count, for information
    supersedes: int | None = None
    closed_at: datetime | None = None
    closed_by: str | None = Field(default=None, max_length=160)
    close_reason: str | None = Field(default=None, max_length=2000)


class LegalAnswer(SQLModel, table=True):
    """One answer to one checklist point. Answering again adds a row; the latest counts."""

    __tablename__ = "legal_answers"
    id: int | None = Field(default=None, primary_key=True)
    submission_id: str = Field(foreign_key="legal_submissions.id", index=True, max_length=36)
    point: str = Field(max_length=64)
    result: Answer = Field(sa_type=enum_column(Answer))
    note: str = Field(default="", max_length=4000)
    reviewer: str = Field(max_length=160)
    answered_at: datetime = Field(default_factory=utcnow)


class LegalOpinion(SQLModel, table=True):
    """The legal office's opinion on one submission: at most one (the unique key is the last guard
    against two concurrent decisions)."""

    __tablename__ = "legal_opinions"
    __table_args__ = (UniqueConstraint("submission_id", name="uq_legal_opinion_submission"),)
    id: int | None = Field(default=None, primary_key=True)
    submission_id: str = Field(foreign_key="legal_submissions.id", max_length=36)
    outcome: Opinion = Field(sa_type=enum_column(Opinion))
    reasons: str = Field(sa_column=Column(Text, nullable=False))
    reviewer: str = Field(max_length=160)
    attestation: str = Field(max_length=500)
    digest: str = Field(max_length=64)  # the submission digest this opinion binds
    checklist: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    authority: str | None = Field(default=None, max_length=200)  # the higher authority, when 报上级
    answered_by: str | None = Field(default=None, max_length=200)  # who answered there
    decided_at: datetime = Field(default_factory=utcnow)


class LegalEscalation(SQLModel, table=True):
    """The handling side does not accept a return or disapproval: collective discussion decides."""

    __tablename__ = "legal_escalations"
    __table_args__ = (UniqueConstraint("submission_id", name="uq_legal_escalation_submission"),)
    id: int | None = Field(default=None, primary_key=True)
    submission_id: str = Field(foreign_key="legal_submissions.id", max_length=36)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    requested_by: str = Field(max_length=160)
    requested_at: datetime = Field(default_factory=utcnow)
    outcome: CollectiveOutcome | None = Field(default=None, sa_type=enum_column(CollectiveOutcome))
    outcome_reasons: str | None = Field(default=None, sa_column=Column(Text))
    participants: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    decided_by: str | None = Field(default=None, max_length=160)
    decided_at: datetime | None = None


# Public shapes -----------------------------------------------------------------------------


class EvidenceRef(SQLModel):
    """A record version (``record_id`` + ``version``) or a media item (``media_id``) of the case."""

    record_id: str | None = None
    version: int | None = None
    media_id: str | None = None


class SubmissionPublic(SQLModel):
    id: str
    case_id: str
    version: int
    decision_kind: str
    decision_kind_zh: str
    amounts: dict[str, str]
    legal_basis: list[str]
    facts: str
    evidence: list[dict[str, Any]]
    materials: dict[str, list[dict[str, Any]]]
    hearing: bool
    marks: list[str]
    digest: str
    required: bool
    rule_id: str | None
    matched_rules: list[str]
    higher_authority: bool
    catalogue_version: int
    state: SubmissionState
    lock_version: int
    submitted_by: str
    submitted_at: datetime
    attestation: str
    due: date | None
    due_provisional: bool = False
    due_missing_years: list[int] = []
    due_weekdays: date | None = None
    due_note: str = ""  # "provisional: the 2027 holiday arrangement is not loaded", in the reader's language
    supersedes: int | None
    closed_at: datetime | None
    closed_by: str | None
    close_reason: str | None


class ChecklistItem(SQLModel):
    point: str
    label: str
    label_zh: str
    result: Answer | None
    result_zh: str | None
    note: str
    reviewer: str | None
    answered_at: datetime | None


class OpinionPublic(SQLModel):
    outcome: Opinion
    outcome_label: str
    outcome_zh: str
    reasons: str
    reviewer: str
    attestation: str
    digest: str
    authority: str | None
    answered_by: str | None
    decided_at: datetime


class EscalationPublic(SQLModel):
    reason: str
    requested_by: str
    requested_at: datetime
    outcome: CollectiveOutcome | None
    outcome_label: str | None
    outcome_zh: str | None
    outcome_reasons: str | None
    participants: list[str]
    decided_by: str | None
    decided_at: datetime | None


class MarkPublic(SQLModel):
    mark: str
    label_zh: str
    reason: str
    set_by: str
    set_at: datetime


class LegalReviewPublic(SQLModel):
    """The contract of ``GET /api/v1/cases/{id}/legal-review``."""

    case_id: str
    case_number: str
    required: bool
    rule: str | None
    rule_label_zh: str | None
    matched_rules: list[str]
    explanation: str
    higher_authority: bool
    catalogue_version: int
    status: ReviewStatus
    status_label: str
    status_zh: str
    due: date | None
    due_provisional: bool = False
    due_missing_years: list[int] = []
    due_weekdays: date | None = None
    due_note: str = ""
    due_explanation: str = ""  # how a provisional date was counted
    overdue: bool
    working_days_overdue: int | None
    submission: SubmissionPublic | None
    checklist: list[ChecklistItem]
    opinion: OpinionPublic | None
    escalation: EscalationPublic | None
    marks: list[MarkPublic]
    history: list[SubmissionPublic]


class OverdueItem(SQLModel):
    submission_id: str
    case_id: str
    case_number: str
    case_title: str
    version: int
    decision_kind: str
    rule_id: str | None
    submitted_by: str
    submitted_at: datetime
    due: date
    due_provisional: bool = False
    due_missing_years: list[int] = []
    due_weekdays: date | None = None
    due_note: str = ""
    higher_authority: bool


class OverdueList(SQLModel):
    today: date
    items: list[OverdueItem]
    total: int


class CataloguePublic(SQLModel):
    version: int
    body: dict[str, Any]
    created_by: str
    reason: str
    created_at: datetime | None

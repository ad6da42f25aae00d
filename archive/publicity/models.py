"""Enforcement publicity (行政执法公示): the qualified roster, advance documents, decisions published
on time after redaction and taken down when revoked, webhook deliveries and yearly reports.

Internal ids (``id`` columns, case ids, record ids) never leave the server on the public face: a
published decision is known outside by ``ref``, a random reference with no meaning inside; a document
by its ``key`` and version; a report by its year.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from archive.clock import utcnow
from archive.models import enum_column, new_id

# --------------------------------------------------------------------------- vocabulary


class DecisionCategory(StrEnum):
    LICENSING = "licensing"
    PENALTY = "penalty"
    COERCION = "coercion"
    INSPECTION = "inspection"
    COLLECTION = "collection"
    CONFIRMATION = "confirmation"
    OTHER = "other"


CATEGORY_ZH: dict[str, str] = {
    DecisionCategory.LICENSING: "行政许可",
    DecisionCategory.PENALTY: "行政处罚",
    DecisionCategory.COERCION: "行政强制",
    DecisionCategory.INSPECTION: "行政检查",
    DecisionCategory.COLLECTION: "行政征收",
    DecisionCategory.CONFIRMATION: "行政确认",
    DecisionCategory.OTHER: "其他",
}

# "行政许可、行政处罚的执法决定信息要在执法决定作出之日起7个工作日内公开" (seed 000); every other
# decision within 20 working days.
PUBLICATION_WORKING_DAYS: dict[str, int] = {
    DecisionCategory.LICENSING: 7,
    DecisionCategory.PENALTY: 7,
    DecisionCategory.COERCION: 20,
    DecisionCategory.INSPECTION: 20,
    DecisionCategory.COLLECTION: 20,
    DecisionCategory.CONFIRMATION: 20,
    DecisionCategory.OTHER: 20,
}


class PartyKind(StrEnum):
    NATURAL_PERSON = "natural-person"
    ORGANISATION = "organisation"


PARTY_ZH: dict[str, str] = {
    PartyKind.NATURAL_PERSON: "自然人",
    PartyKind.ORGANISATION: "法人或其他组织",
}


class DecisionState(StrEnum):
    PENDING = "pending"  # registered, no approved redaction yet
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"  # taken down; only the notice of withdrawal stays public


class WithdrawalGround(StrEnum):
    REVOKED = "revoked"  # 依法撤销
    ANNULLED = "annulled"  # 被复议机关或法院撤销、确认违法
    REMADE = "remade"  # 要求重新作出


WITHDRAWAL_ZH: dict[str, str] = {
    WithdrawalGround.REVOKED: "依法撤销",
    WithdrawalGround.ANNULLED: "被复议机关或人民法院撤销、确认违法",
    WithdrawalGround.REMADE: "责令重新作出",
}


class Timeliness(StrEnum):
    ON_TIME = "on-time"
    LATE = "late"  # published after its deadline
    OVERDUE = "overdue"  # not published, deadline passed
    PENDING = "pending"  # not published, deadline not yet passed


TIMELINESS_ZH: dict[str, str] = {
    Timeliness.ON_TIME: "按时公开",
    Timeliness.LATE: "逾期公开",
    Timeliness.OVERDUE: "逾期未公开",
    Timeliness.PENDING: "待公开",
}


class DocumentKind(StrEnum):
    """What is published in advance (事前公开, seed 000 item 1)."""

    BODIES = "bodies"
    DUTIES = "duties"
    POWERS = "powers"
    LEGAL_BASIS = "legal-basis"
    PROCEDURES = "procedures"
    REMEDIES = "remedies"
    RANDOM_INSPECTION = "random-inspection"
    DISCRETION = "discretion"
    SERVICE_GUIDE = "service-guide"
    OTHER = "other"


DOCUMENT_ZH: dict[str, str] = {
    DocumentKind.BODIES: "执法主体",
    DocumentKind.DUTIES: "执法职责",
    DocumentKind.POWERS: "执法权限",
    DocumentKind.LEGAL_BASIS: "执法依据",
    DocumentKind.PROCEDURES: "执法程序",
    DocumentKind.REMEDIES: "救济渠道",
    DocumentKind.RANDOM_INSPECTION: "随机抽查事项清单",
    DocumentKind.DISCRETION: "自由裁量基准",
    DocumentKind.SERVICE_GUIDE: "服务指南",
    DocumentKind.OTHER: "其他",
}


class DocumentState(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    SUPERSEDED = "superseded"


class PerformanceStatus(StrEnum):
    """How a decision has been carried out (行政执法决定的履行情况, seed 003)."""

    NOT_DUE = "not-due"  # 履行期限未届满
    FULFILLED = "fulfilled"  # 已履行
    PARTLY = "partly"  # 部分履行
    NOT_FULFILLED = "not-fulfilled"  # 未履行
    ENFORCED = "enforced"  # 已强制执行
    COURT = "court"  # 已申请人民法院强制执行


PERFORMANCE_ZH: dict[str, str] = {
    PerformanceStatus.NOT_DUE: "履行期限未届满",
    PerformanceStatus.FULFILLED: "已履行",
    PerformanceStatus.PARTLY: "部分履行",
    PerformanceStatus.NOT_FULFILLED: "未履行",
    PerformanceStatus.ENFORCED: "已强制执行",
    PerformanceStatus.COURT: "已申请法院强制执行",
}


class InspectionOutcome(StrEnum):
    """The result of one random inspection (双随机抽查结果)."""

    NO_PROBLEM = "no-problem"  # 未发现问题
    RECTIFY = "rectify"  # 发现问题已责令整改
    PENALISED = "penalised"  # 发现问题已依法处罚
    REFERRED = "referred"  # 已移交有关部门


INSPECTION_ZH: dict[str, str] = {
    InspectionOutcome.NO_PROBLEM: "未发现问题",
    InspectionOutcome.RECTIFY: "发现问题已责令整改",
    InspectionOutcome.PENALISED: "发现问题已依法处罚",
    InspectionOutcome.REFERRED: "已移交有关部门",
}


class InspectionState(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"  # taken down: kept here, gone from the public face


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the last attempt


class ReportState(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


# --------------------------------------------------------------------------- roster


class RosterBase(SQLModel):
    officer: str = Field(index=True, max_length=64)  # the archive's key: the badge records and the dock use
    name: str = Field(max_length=200)
    unit: str = Field(max_length=200)
    post: str = Field(default="", max_length=200)
    badge_no: str = Field(default="", max_length=64)  # 警号 (police only)
    certificate_no: str = Field(max_length=64)
    category: str = Field(max_length=200)  # 执法类别
    area: str = Field(max_length=200)  # 执法区域
    valid_from: date
    valid_to: date


class RosterEntry(RosterBase, table=True):
    """One enforcement certificate of one officer. A renewal is a new row; a row is changed only to
    correct it (logged with before and after) or revoked, never deleted."""

    __tablename__ = "publicity_roster"
    __table_args__ = (UniqueConstraint("certificate_no", name="uq_publicity_roster_certificate"),)
    id: int | None = Field(default=None, primary_key=True)
    revoked_at: datetime | None = None
    revoke_reason: str | None = Field(default=None, max_length=2000)
    created_by: str = Field(max_length=160)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class RosterPublic(RosterBase):
    id: int
    revoked_at: datetime | None
    revoke_reason: str | None


class RosterPublicFace(SQLModel):
    """What the public roster shows (证件编号、执法类别、执法区域、证件有效期; 警号 for police)."""

    name: str
    unit: str
    post: str
    badge_no: str
    certificate_no: str
    category: str
    area: str
    valid_from: date
    valid_to: date


class QualificationFlag(SQLModel, table=True):
    """A recording docked by an officer without a valid certificate on its date: archived all the
    same (evidence is never refused), flagged and listed."""

    __tablename__ = "publicity_qualification_flags"
    __table_args__ = (UniqueConstraint("media_id", name="uq_publicity_qualification_media"),)
    id: int | None = Field(default=None, primary_key=True)
    media_id: str = Field(foreign_key="media.id", max_length=36)
    officer: str = Field(index=True, max_length=64)
    on_date: date
    reason: str = Field(max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class QualificationFlagPublic(SQLModel):
    media_id: str
    officer: str
    on_date: date
    reason: str
    created_at: datetime


# --------------------------------------------------------------------------- advance documents


class PublicDocument(SQLModel, table=True):
    """One version of an advance document. Versions are kept: a change is a new version, approved
    by a publisher before it replaces the one the public sees."""

    __tablename__ = "publicity_documents"
    __table_args__ = (UniqueConstraint("key", "version", name="uq_publicity_document_version"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, max_length=64)
    version: int
    kind: DocumentKind = Field(sa_type=enum_column(DocumentKind))
    title: str = Field(max_length=500)
    body: str = Field(sa_column=Column(Text, nullable=False))
    note: str = Field(default="", max_length=2000)  # why this version
    sha256: str = Field(max_length=64)
    state: DocumentState = Field(default=DocumentState.DRAFT, sa_type=enum_column(DocumentState))
    created_by: str = Field(max_length=160)
    created_at: datetime = Field(default_factory=utcnow)
    approved_by: str | None = Field(default=None, max_length=160)
    approved_at: datetime | None = None


class DocumentPublic(SQLModel):
    key: str
    version: int
    kind: DocumentKind
    kind_label: str
    title: str
    body: str
    note: str
    sha256: str
    state: DocumentState
    created_by: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None


# --------------------------------------------------------------------------- decisions


class Decision(SQLModel, table=True):
    __tablename__ = "publicity_decisions"
    __table_args__ = (
        UniqueConstraint("case_id", "record_id", name="uq_publicity_decision_record"),
        UniqueConstraint("ref", name="uq_publicity_decision_ref"),
        Index("ix_publicity_decisions_due", "state", "deadline"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    ref: str = Field(max_length=32)  # the public reference
    case_id: str = Field(foreign_key="cases.id", index=True, max_length=36)
    record_id: str = Field(max_length=36)  # the decision document (a text record)
    category: DecisionCategory = Field(sa_type=enum_column(DecisionCategory))
    decided_on: date = Field(index=True)
    deadline: date
    # ``deadline`` crosses a year the calendar did not know: provisional (every day of those years
    # counted as working, so never later than the real one), recomputed when the year is set.
    deadline_provisional: bool = False
    deadline_missing_years: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    deadline_weekdays: date | None = None  # provisional only: the Monday-Friday count, for information
    party_kind: PartyKind = Field(sa_type=enum_column(PartyKind))
    party_name: str = Field(max_length=200)
    conclusion: str = Field(sa_column=Column(Text, nullable=False))
    document_no: str = Field(default="", max_length=100)  # 文书编号
    # Other natural persons named in the decision (witnesses, co-parties): masked like the party.
    persons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    state: DecisionState = Field(default=DecisionState.PENDING, sa_type=enum_column(DecisionState))
    published_version: int | None = None
    published_at: datetime | None = None
    published_on: date | None = None
    corrected_on: date | None = None
    published_by: str | None = Field(default=None, max_length=160)
    withdrawn_at: datetime | None = None
    withdrawn_on: date | None = None
    withdrawal_ground: WithdrawalGround | None = Field(default=None, sa_type=enum_column(WithdrawalGround))
    withdrawal_reason: str | None = Field(default=None, max_length=2000)
    withdrawn_by: str | None = Field(default=None, max_length=160)
    created_by: str = Field(max_length=160)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Redaction(SQLModel, table=True):
    """One redacted version of a decision: what would be public, and its SHA-256, which the
    publisher's approval must name. Never updated except to stamp the approval."""

    __tablename__ = "publicity_redactions"
    __table_args__ = (UniqueConstraint("decision_id", "version", name="uq_publicity_redaction_version"),)
    id: int | None = Field(default=None, primary_key=True)
    decision_id: str = Field(foreign_key="publicity_decisions.id", index=True, max_length=36)
    version: int
    record_version: int  # the version of the decision record it was made from
    text: str = Field(sa_column=Column(Text, nullable=False))
    party: str = Field(max_length=200)
    conclusion: str = Field(sa_column=Column(Text, nullable=False))
    sha256: str = Field(max_length=64)
    edited: bool = False  # the publisher supplied the text (it was re-checked, not produced)
    findings: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    residual: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    overrides: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=160)
    created_at: datetime = Field(default_factory=utcnow)
    approved_by: str | None = Field(default=None, max_length=160)
    approved_at: datetime | None = None


class DecisionPublic(SQLModel):
    """The internal view (publishers, records managers, admins, auditors)."""

    id: str
    ref: str
    case_id: str
    case_number: str
    record_id: str
    category: DecisionCategory
    category_label: str
    decided_on: date
    deadline: date
    deadline_provisional: bool = False
    deadline_missing_years: list[int] = []
    deadline_weekdays: date | None = None
    deadline_note: str = ""  # "provisional: the 2027 holiday arrangement is not loaded"
    party_kind: PartyKind
    party_name: str
    conclusion: str
    document_no: str
    persons: list[str]
    state: DecisionState
    timeliness: Timeliness
    published_version: int | None
    published_on: date | None
    corrected_on: date | None
    withdrawn_on: date | None
    withdrawal_ground: WithdrawalGround | None
    withdrawal_reason: str | None


class RedactionPublic(SQLModel):
    decision_ref: str
    version: int
    record_version: int
    text: str
    party: str
    conclusion: str
    sha256: str
    edited: bool
    findings: list[dict[str, Any]]
    residual: list[dict[str, Any]]
    overrides: list[dict[str, Any]]
    diff: list[str]
    created_by: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None


class DueItem(SQLModel):
    id: str
    ref: str
    case_number: str
    category: DecisionCategory
    category_label: str
    decided_on: date
    deadline: date
    deadline_provisional: bool = False
    deadline_missing_years: list[int] = []
    deadline_weekdays: date | None = None
    deadline_note: str = ""
    working_days_left: int  # negative: working days overdue (counted as the provisional deadline was)


class DueList(SQLModel):
    today: date
    overdue: list[DueItem]
    due_soon: list[DueItem]


# --------------------------------------------------------------------------- performance (A10)


class DecisionPerformance(SQLModel, table=True):
    """One statement of how a decision has been carried out, as established on ``as_of``. Each is a
    new version (the history is kept, never overwritten); the newest is the current one."""

    __tablename__ = "publicity_performance"
    __table_args__ = (UniqueConstraint("decision_id", "version", name="uq_publicity_performance_version"),)
    id: int | None = Field(default=None, primary_key=True)
    decision_id: str = Field(foreign_key="publicity_decisions.id", index=True, max_length=36)
    version: int
    status: PerformanceStatus = Field(sa_type=enum_column(PerformanceStatus))
    as_of: date
    note: str = Field(default="", max_length=2000)  # internal: never on the public face
    created_by: str = Field(max_length=160)
    created_at: datetime = Field(default_factory=utcnow)


class PerformancePublic(SQLModel):
    """The internal view of one version (readers with ``publicity.read``)."""

    decision_id: str
    decision_ref: str
    version: int
    status: PerformanceStatus
    status_label: str
    as_of: date
    note: str
    created_by: str
    created_at: datetime


# --------------------------------------------------------------------------- random inspections (A10)


class RandomInspection(SQLModel, table=True):
    """One result of a random inspection (双随机抽查结果): a draft until a publisher approves it by
    naming the SHA-256 of exactly what the public will see (``public_party``, ``public_summary`` and
    the other public fields); withdrawn, it leaves the public face and stays here."""

    __tablename__ = "publicity_inspections"
    __table_args__ = (
        UniqueConstraint("ref", name="uq_publicity_inspection_ref"),
        Index("ix_publicity_inspections_public", "state", "published_at"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    ref: str = Field(max_length=32)  # the public reference
    item: str = Field(max_length=500)  # the inspection item (随机抽查事项)
    party_kind: PartyKind = Field(sa_type=enum_column(PartyKind))
    party_name: str = Field(max_length=200)
    inspected_on: date
    result: InspectionOutcome = Field(sa_type=enum_column(InspectionOutcome))
    summary: str = Field(sa_column=Column(Text, nullable=False))
    public_party: str = Field(max_length=200)  # a natural person's name masked (张某某)
    public_summary: str = Field(sa_column=Column(Text, nullable=False))  # through the redaction engine
    sha256: str = Field(max_length=64)
    state: InspectionState = Field(default=InspectionState.DRAFT, sa_type=enum_column(InspectionState))
    created_by: str = Field(max_length=160)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    published_by: str | None = Field(default=None, max_length=160)
    published_at: datetime | None = None
    published_on: date | None = None
    withdrawn_by: str | None = Field(default=None, max_length=160)
    withdrawn_at: datetime | None = None
    withdrawn_on: date | None = None
    withdrawal_reason: str | None = Field(default=None, max_length=2000)


class InspectionPublic(SQLModel):
    """The internal view (readers with ``publicity.read``): what was entered, and what the public
    sees (``public_party``, ``public_summary``) with the SHA-256 an approval must name."""

    id: str
    ref: str
    item: str
    party_kind: PartyKind
    party_name: str
    inspected_on: date
    result: InspectionOutcome
    result_label: str
    summary: str
    public_party: str
    public_summary: str
    sha256: str
    state: InspectionState
    created_by: str
    created_at: datetime
    published_by: str | None
    published_on: date | None
    withdrawn_by: str | None
    withdrawn_on: date | None
    withdrawal_reason: str | None


# --------------------------------------------------------------------------- webhooks


class Delivery(SQLModel, table=True):
    """One push to the external publicity platform (an outbox row: a reconcile re-sends pending
    ones whose task was lost)."""

    __tablename__ = "publicity_deliveries"
    __table_args__ = (Index("ix_publicity_deliveries_pending", "state", "next_attempt_at"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    event: str = Field(max_length=64)
    subject: str = Field(max_length=64)  # a public reference: decision ref, document key, report year
    url: str = Field(max_length=2000)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state: DeliveryState = Field(default=DeliveryState.PENDING, sa_type=enum_column(DeliveryState))
    attempts: int = 0
    max_attempts: int = 10  # attempts after which it is failed (raised when a person retries it)
    last_status: int | None = None
    last_error: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)
    next_attempt_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None
    failed_at: datetime | None = None


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "publicity_delivery_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "attempt", name="uq_publicity_delivery_attempt"),)
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(foreign_key="publicity_deliveries.id", index=True, max_length=36)
    attempt: int
    at: datetime = Field(default_factory=utcnow)
    status_code: int | None = None
    error: str = Field(default="", max_length=2000)
    duration_ms: int = 0


class DeliveryPublic(SQLModel):
    id: str
    event: str
    subject: str
    state: DeliveryState
    attempts: int
    max_attempts: int
    last_status: int | None
    last_error: str
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    failed_at: datetime | None


# --------------------------------------------------------------------------- yearly report


class AnnualReport(SQLModel, table=True):
    """A signed yearly report (每年1月31日前公开上年度行政执法总体情况). Each draft is a new version;
    publishing stamps one."""

    __tablename__ = "publicity_reports"
    __table_args__ = (UniqueConstraint("year", "version", name="uq_publicity_report_version"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    version: int
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    signature: str = Field(max_length=200)
    key_id: str = Field(max_length=32)
    state: ReportState = Field(default=ReportState.DRAFT, sa_type=enum_column(ReportState))
    created_by: str = Field(max_length=160)
    created_at: datetime = Field(default_factory=utcnow)
    published_by: str | None = Field(default=None, max_length=160)
    published_at: datetime | None = None


class ReportPublic(SQLModel):
    year: int
    version: int
    state: ReportState
    body: dict[str, Any]
    signature: dict[str, str]
    created_by: str
    created_at: datetime
    published_at: datetime | None

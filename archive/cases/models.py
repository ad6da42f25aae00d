"""Cases, text records (append-only versions), reviewer assignments and case-media links.

Full-text search over record bodies lives outside these models, in migration 0002_cases: a
``tsvector`` column with a GIN index on PostgreSQL, an FTS5 table kept by triggers on SQLite.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import computed_field
from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from archive import vocabulary
from archive.clock import utcnow
from archive.media.models import ClockSource
from archive.models import enum_column, new_id


class CaseKind(StrEnum):
    ADMINISTRATIVE = "administrative"
    CRIMINAL = "criminal"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Stage(StrEnum):
    """The seven procedural stages, in procedural order."""

    FILING = "filing"
    INVESTIGATION = "investigation"
    EVIDENCE_COLLECTION = "evidence-collection"
    REVIEW = "review"
    DECISION = "decision"
    SERVICE = "service"
    EXECUTION = "execution"


class DocumentKind(StrEnum):
    NOTICE = "notice"
    INQUIRY_TRANSCRIPT = "inquiry-transcript"
    INSPECTION_RECORD = "inspection-record"
    DECISION = "decision"
    SERVICE_RECEIPT = "service-receipt"
    REPORT = "report"
    OTHER = "other"


class LinkSource(StrEnum):
    MANUAL = "manual"  # a person linked it, with a reason
    AUTO = "auto"  # the officers-and-time-window rule of a text record
    ATTACHMENT = "attachment"  # a scan or PDF a text record carries


class CaseBase(SQLModel):
    agency: str = Field(default="default", max_length=64)
    number: str = Field(max_length=64, index=True)
    title: str = Field(max_length=500)
    kind: CaseKind = Field(sa_type=enum_column(CaseKind))
    status: CaseStatus = Field(default=CaseStatus.OPEN, sa_type=enum_column(CaseStatus))
    stage: Stage = Field(default=Stage.FILING, sa_type=enum_column(Stage))


class Case(CaseBase, table=True):
    __tablename__ = "cases"
    # Case numbers are unique per agency, not worldwide: two agencies may both have "2024-001".
    __table_args__ = (UniqueConstraint("agency", "number", name="uq_case_agency_number"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class CaseReviewer(SQLModel, table=True):
    __tablename__ = "case_reviewers"
    case_id: str = Field(foreign_key="cases.id", primary_key=True, max_length=36)
    user_name: str = Field(primary_key=True, max_length=64, index=True)
    assigned_by: str = Field(max_length=64)
    assigned_at: datetime = Field(default_factory=utcnow)


class TextRecord(SQLModel, table=True):
    """One version of a text record. Rows are never updated or deleted (triggers refuse it): an edit
    inserts version n+1 under the same ``record_id``, so every version stays readable."""

    __tablename__ = "case_records"
    __table_args__ = (
        UniqueConstraint("record_id", "version", name="uq_case_record_version"),
        Index("ix_case_records_window", "occurred_from", "occurred_to"),
    )
    # An integer key: SQLite's FTS5 table follows it as its rowid.
    id: int | None = Field(default=None, primary_key=True)
    record_id: str = Field(default_factory=new_id, max_length=36, index=True)
    version: int = 1
    case_id: str = Field(foreign_key="cases.id", index=True, max_length=36)
    stage: Stage = Field(sa_type=enum_column(Stage))
    doc_kind: DocumentKind = Field(sa_type=enum_column(DocumentKind))
    title: str = Field(default="", max_length=500)
    author: str = Field(max_length=200)
    officers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    occurred_from: datetime
    occurred_to: datetime
    body: str = Field(sa_column=Column(Text, nullable=False))
    attachments: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class RecordOfficer(SQLModel, table=True):
    """Officers named by a record version, one row each: the auto-link rule and the case search
    ("cases of officer X") query it with an index instead of reading JSON."""

    __tablename__ = "case_record_officers"
    record_row: int = Field(foreign_key="case_records.id", primary_key=True)
    badge: str = Field(primary_key=True, max_length=64, index=True)


class CaseMedia(SQLModel, table=True):
    """A link between a case and a media item. Unlinking closes the row (with who, when, why);
    linking again opens a new one, so the history of every link stays on the row set and in the log."""

    __tablename__ = "case_media"
    __table_args__ = (
        # At most one open link per (case, media).
        Index(
            "uq_case_media_open",
            "case_id",
            "media_id",
            unique=True,
            postgresql_where=text("unlinked_at IS NULL"),
            sqlite_where=text("unlinked_at IS NULL"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="cases.id", index=True, max_length=36)
    media_id: str = Field(foreign_key="media.id", index=True, max_length=36)
    source: LinkSource = Field(sa_type=enum_column(LinkSource))
    reason: str = Field(max_length=2000)
    record_id: str | None = Field(
        default=None, max_length=36
    )  # the record whose rule or attachment linked it
    linked_by: str = Field(max_length=160)
    linked_at: datetime = Field(default_factory=utcnow)
    unlinked_at: datetime | None = None
    unlinked_by: str | None = Field(default=None, max_length=160)
    unlink_reason: str | None = Field(default=None, max_length=2000)
    # A link the auto-link rule made for someone who could not already see the media (issue 10):
    # it grants nothing (the media stays unseen through this case) until a person who may see the
    # media confirms it.
    pending: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    confirmed_by: str | None = Field(default=None, max_length=160)
    confirmed_at: datetime | None = None


class CaseOfficer(SQLModel, table=True):
    """An officer on a case: the auto-link rule links only recordings of these officers. Records
    managers and admins put officers on a case (a reviewer cannot name an officer into it)."""

    __tablename__ = "case_officers"
    case_id: str = Field(foreign_key="cases.id", primary_key=True, max_length=36)
    badge: str = Field(primary_key=True, max_length=64, index=True)
    reason: str = Field(max_length=2000)
    added_by: str = Field(max_length=160)
    added_at: datetime = Field(default_factory=utcnow)


class CaseOfficerPublic(SQLModel):
    case_id: str
    badge: str
    reason: str
    added_by: str
    added_at: datetime


# Public shapes -----------------------------------------------------------------------------


class CasePublic(CaseBase):
    id: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    reviewers: list[str] = []

    # Names people read, in the request's language (archive/vocabulary.json); the keys stay the API.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def kind_label(self) -> str:
        return vocabulary.label("case_kind", self.kind)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def stage_label(self) -> str:
        return vocabulary.label("stage", self.stage)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status_label(self) -> str:
        return vocabulary.label("case_status", self.status)


class RecordPublic(SQLModel):
    record_id: str
    version: int
    case_id: str
    stage: Stage
    doc_kind: DocumentKind
    title: str
    author: str
    officers: list[str]
    occurred_from: datetime
    occurred_to: datetime
    body: str
    attachments: list[str]
    created_by: str
    created_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def stage_label(self) -> str:
        return vocabulary.label("stage", self.stage)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def doc_kind_label(self) -> str:
        return vocabulary.label("doc_kind", self.doc_kind)


class LinkPublic(SQLModel):
    case_id: str
    media_id: str
    source: LinkSource
    reason: str
    record_id: str | None
    linked_by: str
    linked_at: datetime
    unlinked_at: datetime | None
    unlinked_by: str | None
    unlink_reason: str | None
    pending: bool = False
    confirmed_by: str | None = None
    confirmed_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def source_label(self) -> str:
        return vocabulary.label("link_source", self.source)


class TimelineMedia(SQLModel):
    """A media item on the case clock. ``start``/``end`` are corrected: device time minus offset."""

    type: str = "media"
    id: str
    kind: str  # video, audio, image, or unknown (not decodable)
    file_name: str
    state: str
    officer: str
    device: str
    start: datetime | None
    end: datetime | None
    duration_s: float | None
    recorded_at_device: datetime | None
    # "metadata" (the container's own creation time) or "file" (the file time the dock sent)
    device_time_source: str | None = None
    clock_offset_s: float
    clock_source: ClockSource
    correction: str  # for people: "device clock 12.0 s fast (measured); shown corrected"
    proxy_url: str | None
    poster_url: str | None
    proxy_type: str | None
    links: list[dict[str, Any]]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state_label(self) -> str:
        return vocabulary.label("media_state", self.state)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def clock_source_label(self) -> str:
        return vocabulary.label("clock_source", self.clock_source)


class TimelineRecord(SQLModel):
    type: str = "record"
    record_id: str
    version: int
    stage: Stage
    doc_kind: DocumentKind
    title: str
    author: str
    officers: list[str]
    start: datetime
    end: datetime
    body: str
    attachments: list[str]
    # With ``coverage=true``: the record's coverage (status, status_zh, gaps), as GET .../coverage has it.
    coverage: dict[str, Any] | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def stage_label(self) -> str:
        return vocabulary.label("stage", self.stage)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def doc_kind_label(self) -> str:
        return vocabulary.label("doc_kind", self.doc_kind)


class Timeline(SQLModel):
    case: CasePublic
    items: list[TimelineMedia | TimelineRecord]

"""Runs of the early-warning check and the warnings each run found."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from archive.clock import utcnow
from archive.i18n import N_
from archive.models import enum_column


class WarningKind(StrEnum):
    MISSING = "missing-recording"  # a record whose activity requires audio-video has none
    GAPS = "gaps"  # recordings leave stretches of the window uncovered
    UNLINKED = "unlinked-recording"  # a recording linked to no case after N days
    NO_CERTIFICATE = "officer-without-certificate"  # from the publicity roster (issue 14)
    NO_ACTIVITY = "record-without-activity"  # a record that states no activity of the list
    # The working-day calendar does not know a year it should by now (archive.workdays.provisional).
    CALENDAR_YEAR = "calendar-year-missing"
    PROVISIONAL_DEADLINE = "provisional-deadline"  # a live legal-review or publicity limit is provisional


LABELS_ZH: dict[str, str] = {
    WarningKind.MISSING: "应录未录",
    WarningKind.GAPS: "音像记录有间断",
    WarningKind.UNLINKED: "音像记录未关联案件",
    WarningKind.NO_CERTIFICATE: "执法人员无有效执法证件",
    WarningKind.NO_ACTIVITY: "文字记录未标明执法环节",
    WarningKind.CALENDAR_YEAR: "工作日历缺少年度节假日安排",
    WarningKind.PROVISIONAL_DEADLINE: "期限为暂定（节假日安排未载入）",
}
LABELS_EN: dict[str, str] = {
    WarningKind.MISSING: N_("required recording missing"),
    WarningKind.GAPS: N_("gaps in the recording"),
    WarningKind.UNLINKED: N_("recording not linked to a case"),
    WarningKind.NO_CERTIFICATE: N_("officer without a valid certificate"),
    WarningKind.NO_ACTIVITY: N_("record states no activity"),
    WarningKind.CALENDAR_YEAR: N_("working-day calendar lacks a year"),
    WarningKind.PROVISIONAL_DEADLINE: N_("provisional deadline (holiday arrangement not loaded)"),
}


class OversightRun(SQLModel, table=True):
    __tablename__ = "oversight_runs"
    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    item_list_version: int = 0
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    stats: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class OversightWarning(SQLModel, table=True):
    __tablename__ = "oversight_warnings"
    __table_args__ = (Index("ix_oversight_warnings_run_kind", "run_id", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="oversight_runs.id")
    kind: WarningKind = Field(sa_type=enum_column(WarningKind))
    subject_type: str = Field(max_length=32)  # record, media, officer, calendar, legal-submission, decision
    subject_id: str = Field(max_length=64)
    case_id: str | None = Field(default=None, max_length=36)
    agency: str = Field(default="", max_length=64)
    officer: str = Field(default="", max_length=64)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class WarningPublic(SQLModel):
    kind: WarningKind
    label_zh: str
    subject_type: str
    subject_id: str
    case_id: str | None
    agency: str
    officer: str
    details: dict[str, Any]


class StatPublic(SQLModel):
    agency: str
    officer: str
    records: int
    required: int  # records whose activity requires audio-video
    covered: int
    gaps: int
    missing: int
    missing_with_reason: int
    not_required: int
    coverage_rate: float | None  # covered / required
    recordings: int
    recordings_per_activity: dict[str, int]


class WarningsPublic(SQLModel):
    run_id: int | None
    started_at: datetime | None
    finished_at: datetime | None
    item_list_version: int | None
    counts: dict[str, int]
    total: int
    items: list[WarningPublic]
    stats: list[StatPublic]


class AccessEventPublic(SQLModel):
    id: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    client_addr: str
    outcome: str
    purpose: str
    case_id: str | None
    details: dict[str, Any]

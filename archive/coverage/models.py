"""Recording-item list versions and the activity each text record documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from archive.clock import utcnow


class ItemListVersion(SQLModel, table=True):
    """One version of the recording-item list; never updated (a change inserts the next version)."""

    __tablename__ = "recording_item_lists"
    version: int = Field(primary_key=True)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=160)
    reason: str = Field(max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)


class RecordActivityBase(SQLModel):
    activity: str = Field(max_length=64)
    # The officer's stated reason for recording in text alone (the list's exception), or "".
    no_recording_reason: str = Field(default="", max_length=2000)


class RecordActivity(RecordActivityBase, table=True):
    """The activity a text record documents. Append-only like the records: setting it again inserts a
    new row and the latest row of a record is the one in force; the history stays."""

    __tablename__ = "record_activities"
    __table_args__ = (Index("ix_record_activities_record", "record_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="cases.id", index=True, max_length=36)
    record_id: str = Field(max_length=36)
    item_list_version: int
    set_by: str = Field(max_length=160)
    set_at: datetime = Field(default_factory=utcnow)


class ActivitySet(RecordActivityBase):
    pass


class RecordActivityPublic(RecordActivityBase):
    case_id: str
    record_id: str
    item_list_version: int
    set_by: str
    set_at: datetime


class GapPublic(SQLModel):
    start: datetime
    end: datetime
    seconds: float


class RecordCoveragePublic(SQLModel):
    record_id: str
    version: int
    title: str
    officers: list[str]
    start: datetime
    end: datetime
    activity: str | None
    activity_zh: str | None
    mode: str | None
    status: str
    status_zh: str
    reason: str
    gaps: list[GapPublic]
    covered_s: float
    window_s: float
    recordings: list[str]  # linked recordings that overlap the window


class CaseCoveragePublic(SQLModel):
    case_id: str
    item_list_version: int
    tolerance_s: float
    records: list[RecordCoveragePublic]
    counts: dict[str, int]


class ItemListPublic(SQLModel):
    version: int
    body: dict[str, Any]
    created_by: str
    reason: str
    created_at: datetime | None

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from archive.clock import utcnow


class WorkdayCalendarVersion(SQLModel, table=True):
    """One version of the operator's overrides (a whole document). The newest is in force; older
    versions stay so that every deadline can be re-derived from the calendar it was computed with."""

    __tablename__ = "workday_calendars"
    version: int = Field(primary_key=True)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=160)
    reason: str = Field(max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)


class WorkdayCalendarPublic(SQLModel):
    version: int
    body: dict[str, Any]
    created_by: str
    reason: str
    created_at: datetime | None

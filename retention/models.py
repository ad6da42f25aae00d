"""Retention tables. Flags and holds are never deleted: clearing one stamps it, and every change
is also an event in the custody log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from archive.clock import utcnow
from archive.models import enum_column
from retention.policy import FlagKind, Keep


class PolicyVersion(SQLModel, table=True):
    __tablename__ = "retention_policies"
    version: int = Field(primary_key=True)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=160)
    reason: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)


class RetentionFlagBase(SQLModel):
    media_id: str = Field(foreign_key="media.id", max_length=36)
    kind: FlagKind = Field(sa_type=enum_column(FlagKind))
    reason: str = Field(max_length=2000)
    set_by: str = Field(max_length=160)
    set_at: datetime = Field(default_factory=utcnow)
    cleared_at: datetime | None = None
    cleared_by: str | None = Field(default=None, max_length=160)
    clear_reason: str | None = Field(default=None, max_length=2000)


class RetentionFlag(RetentionFlagBase, table=True):
    __tablename__ = "retention_flags"
    __table_args__ = (Index("ix_retention_flags_media_active", "media_id", "cleared_at"),)
    id: int | None = Field(default=None, primary_key=True)


class RetentionFlagPublic(RetentionFlagBase):
    id: int


class LegalHoldBase(SQLModel):
    media_id: str = Field(foreign_key="media.id", index=True, max_length=36)
    reason: str = Field(max_length=2000)
    placed_by: str = Field(max_length=160)
    placed_at: datetime = Field(default_factory=utcnow)
    released_at: datetime | None = None
    released_by: str | None = Field(default=None, max_length=160)
    release_reason: str | None = Field(default=None, max_length=2000)


class LegalHold(LegalHoldBase, table=True):
    __tablename__ = "legal_holds"
    id: int | None = Field(default=None, primary_key=True)


class LegalHoldPublic(LegalHoldBase):
    id: int


class RetentionStatus(SQLModel, table=True):
    """The current classification of one archived original (recomputed whenever a fact changes)."""

    __tablename__ = "retention_status"
    __table_args__ = (
        # The sweep's query: expired, unprotected, not yet deleted, oldest first.
        Index("ix_retention_due", "delete_after", postgresql_where="NOT protected AND deleted_at IS NULL"),
    )
    media_id: str = Field(foreign_key="media.id", primary_key=True, max_length=36)
    policy_version: int
    rule_id: str = Field(max_length=64)
    keep: Keep = Field(sa_type=enum_column(Keep))
    delete_after: datetime | None = None  # None: kept indefinitely (permanent, held, case file, unreviewed)
    protected: bool = False  # True whenever delete_after is None
    legal_hold: bool = False
    explanation: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    storage_retain_until: datetime | None = None
    storage_legal_hold: bool = False
    computed_at: datetime = Field(default_factory=utcnow)
    deleted_at: datetime | None = None


class RetentionPublic(SQLModel):
    """Why an item is kept or when it may go: which rules apply, which wins, and its flags and holds."""

    media_id: str
    status: str  # "permanent", "kept", "delete after ...", "deleted", "not archived"
    delete_after: str | None
    rule: str | None
    legal_hold: bool
    storage_retain_until: str | None
    storage_legal_hold: bool
    explanation: dict[str, Any]
    flags: list[RetentionFlagPublic]
    holds: list[LegalHoldPublic]


class RetentionDuePublic(SQLModel):
    media_id: str
    rule: str
    delete_after: str | None
    file_name: str | None
    officer: str | None


class RetentionReportPublic(SQLModel):
    """What becomes deletable within ``days``, as of ``as_of``."""

    as_of: str
    days: int
    items: list[RetentionDuePublic]

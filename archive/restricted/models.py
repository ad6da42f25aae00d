"""Sensitivity marks on records, attachments and recordings, and the grants that open them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from archive.clock import utcnow
from archive.models import enum_column


class Sensitivity(StrEnum):
    STATE_SECRET = "state-secret"  # noqa: S105 - a class name, not a password (国家秘密)
    TRADE_SECRET = "trade-secret"  # noqa: S105 - a class name, not a password (商业秘密)
    PRIVACY = "privacy"  # 个人隐私


class SubjectKind(StrEnum):
    RECORD = "record"  # a text record (every version)
    MEDIA = "media"  # a recording or an attachment
    CASE = "case"  # grants only: every marked item of the case


LABELS_ZH: dict[str, str] = {
    Sensitivity.STATE_SECRET: "国家秘密",
    Sensitivity.TRADE_SECRET: "商业秘密",
    Sensitivity.PRIVACY: "个人隐私",
}


class Mark(SQLModel, table=True):
    """A sensitivity mark. Lifting stamps the row (who, when, why); it is never deleted."""

    __tablename__ = "restriction_marks"
    __table_args__ = (Index("ix_restriction_marks_subject", "subject_kind", "subject_id"),)
    id: int | None = Field(default=None, primary_key=True)
    subject_kind: SubjectKind = Field(sa_type=enum_column(SubjectKind))
    subject_id: str = Field(max_length=36)
    case_id: str | None = Field(default=None, max_length=36, index=True)
    sensitivity: Sensitivity = Field(sa_type=enum_column(Sensitivity))
    reason: str = Field(max_length=2000)
    marked_by: str = Field(max_length=160)
    marked_at: datetime = Field(default_factory=utcnow)
    lifted_at: datetime | None = None
    lifted_by: str | None = Field(default=None, max_length=160)
    lift_reason: str | None = Field(default=None, max_length=2000)


class Grant(SQLModel, table=True):
    __tablename__ = "restriction_grants"
    __table_args__ = (Index("ix_restriction_grants_user", "user_name", "subject_kind", "subject_id"),)
    id: int | None = Field(default=None, primary_key=True)
    user_name: str = Field(max_length=128)
    subject_kind: SubjectKind = Field(sa_type=enum_column(SubjectKind))
    subject_id: str = Field(max_length=36)
    reason: str = Field(max_length=2000)
    granted_by: str = Field(max_length=160)
    granted_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=160)


class MarkCreate(SQLModel):
    subject_kind: SubjectKind
    subject_id: str = Field(min_length=1, max_length=36)
    sensitivity: Sensitivity
    reason: str = Field(max_length=2000)


class GrantCreate(SQLModel):
    user_name: str = Field(min_length=1, max_length=128)
    subject_kind: SubjectKind
    subject_id: str = Field(min_length=1, max_length=36)
    reason: str = Field(max_length=2000)


class MarkPublic(SQLModel):
    id: int
    subject_kind: SubjectKind
    subject_id: str
    case_id: str | None
    sensitivity: Sensitivity
    sensitivity_zh: str
    reason: str
    marked_by: str
    marked_at: datetime
    lifted_at: datetime | None


class GrantPublic(SQLModel):
    id: int
    user_name: str
    subject_kind: SubjectKind
    subject_id: str
    reason: str
    granted_by: str
    granted_at: datetime
    revoked_at: datetime | None

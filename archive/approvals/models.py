"""Approval requests: what was asked, by whom and why; who approved or rejected it, and what the
approval carried out."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from archive.clock import utcnow
from archive.models import enum_column


class ApprovalKind(StrEnum):
    CASE_UNLINK = "case.unlink"  # unlink evidence from a case
    RETENTION_UNFLAG = "retention.unflag"  # clear a permanent retention flag
    RETENTION_RELEASE = "retention.release"  # release a legal hold
    RETENTION_POLICY = "retention.policy"  # install a retention policy


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # approved and carried out, in one transaction
    REJECTED = "rejected"
    CANCELLED = "cancelled"  # withdrawn by the requester
    EXPIRED = "expired"  # pending past its expiry: shown so, never stored (nothing happens at expiry)


class ApprovalRequest(SQLModel, table=True):
    __tablename__ = "approval_requests"
    __table_args__ = (Index("ix_approval_requests_subject", "kind", "subject_id", "state"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: ApprovalKind = Field(sa_type=enum_column(ApprovalKind))
    subject_type: str = Field(max_length=32)
    subject_id: str = Field(max_length=128)
    # What approval carries out (the ids, the flag, the policy document); checked when asked.
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    reason: str = Field(max_length=2000)
    requested_by: str = Field(max_length=128, index=True)
    requested_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    state: ApprovalState = Field(
        default=ApprovalState.PENDING, index=True, sa_type=enum_column(ApprovalState)
    )
    decided_by: str | None = Field(default=None, max_length=128)
    decided_at: datetime | None = None
    decision_reason: str = Field(default="", max_length=2000)
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class ApprovalPublic(SQLModel):
    id: int
    kind: ApprovalKind
    subject_type: str
    subject_id: str
    payload: dict[str, Any]
    reason: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    state: ApprovalState
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str
    result: dict[str, Any] | None


class DecisionIn(SQLModel):
    reason: str = Field(default="", max_length=2000)

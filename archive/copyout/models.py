"""Copy-out requests: who asked to take what out of the archive, why, and who approved it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from archive.clock import utcnow
from archive.models import enum_column


class CopyKind(StrEnum):
    CASE_EXPORT = "case-export"
    ORIGINAL_DOWNLOAD = "original-download"


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


LABELS_ZH: dict[str, str] = {
    CopyKind.CASE_EXPORT: "案件导出",
    CopyKind.ORIGINAL_DOWNLOAD: "原始文件下载",
    RequestState.PENDING: "待审批",
    RequestState.APPROVED: "已批准",
    RequestState.REFUSED: "未批准",
}


class CopyOutCreate(SQLModel):
    kind: CopyKind
    subject_id: str = Field(min_length=1, max_length=36)  # the case id or the media id
    purpose: str = Field(max_length=2000)


class CopyOutRequest(SQLModel, table=True):
    __tablename__ = "copyout_requests"
    id: int | None = Field(default=None, primary_key=True)
    kind: CopyKind = Field(sa_type=enum_column(CopyKind))
    subject_id: str = Field(max_length=36, index=True)
    purpose: str = Field(max_length=2000)
    requested_by: str = Field(max_length=128, index=True)
    requested_at: datetime = Field(default_factory=utcnow)
    state: RequestState = Field(default=RequestState.PENDING, sa_type=enum_column(RequestState))
    decided_by: str | None = Field(default=None, max_length=128)
    decided_at: datetime | None = None
    decision_reason: str = Field(default="", max_length=2000)
    used_count: int = 0


class Decision(SQLModel):
    reason: str = Field(default="", max_length=2000)


class CopyOutPublic(SQLModel):
    id: int
    kind: CopyKind
    subject_id: str
    purpose: str
    requested_by: str
    requested_at: datetime
    state: RequestState
    state_zh: str
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str
    used_count: int

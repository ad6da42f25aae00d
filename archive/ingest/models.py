"""Ingest tables: the tus upload that becomes a media item."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel

from archive.clock import utcnow
from archive.models import enum_column, new_id


class UploadState(StrEnum):
    OPEN = "open"
    COMPLETE = "complete"
    TERMINATED = "terminated"


class Upload(SQLModel, table=True):
    """A tus upload. Its bytes go to an S3 multipart upload, ``part_size`` at a time; the tail
    that does not yet fill a part is kept as a small S3 object so a restart loses nothing."""

    __tablename__ = "uploads"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    state: UploadState = Field(default=UploadState.OPEN, sa_type=enum_column(UploadState))
    length: int = Field(sa_column=Column(BigInteger, nullable=False))
    offset: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    part_size: int
    parts: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    tail_size: int = 0
    object_key: str = Field(max_length=200)
    multipart_id: str | None = Field(default=None, max_length=256)
    metadata_: dict[str, Any] = Field(sa_column=Column("metadata", JSON, nullable=False))
    created_by: int = Field(foreign_key="users.id")
    media_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class UploadStatusPublic(SQLModel):
    """Where an upload's media item is in the pipeline (not part of tus; the dock polls it)."""

    id: str
    state: UploadState
    offset: int
    length: int
    media_id: str | None
    media_state: str | None
    media_reason: str | None
    duplicate_of: str | None


class VerifyCheckpoint(SQLModel, table=True):
    """How far the verification of one stored original has hashed, and the hash state there
    (archive.ingest.sha256state), so a verification killed half way resumes instead of restarting.
    Valid only for the object it was taken on (its ETag): a replaced object is read again in full."""

    __tablename__ = "verify_checkpoints"
    media_id: str = Field(primary_key=True, max_length=36, foreign_key="media.id")
    object_etag: str = Field(max_length=128)
    offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(max_length=512)  # base64 of the SHA256_CTX bytes
    updated_at: datetime = Field(default_factory=utcnow)


class IngestDraft(SQLModel, table=True):
    """Probe and derive work done while the original was still being verified ("derive beside
    verify", docs/architecture.md). It states nothing until verification has passed on the same
    object (``object_etag``): the verify step then records it (media.probe, media.derive events and
    Derivative rows) or, for a failed verification or a replaced object, throws it away (the row and
    the derived objects it names). Users never see a draft; media states stay truthful."""

    __tablename__ = "ingest_drafts"
    media_id: str = Field(primary_key=True, max_length=36, foreign_key="media.id")
    object_etag: str = Field(max_length=128)  # the object the work was done on
    probe: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    probe_reason: str = Field(default="", max_length=2000)  # unplayable reason; "" when playable
    # None: not derived yet; a list (maybe empty) of Derivative fields once derive has finished.
    derivatives: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    derive_reason: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

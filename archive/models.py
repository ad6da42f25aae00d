"""Database tables (SQLModel). Schema changes go through Alembic (archive/migrations).

Naming follows ``XBase`` / ``X(table=True)`` / ``XPublic``: public models are what the API
returns; storage keys and token hashes never leave the server.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel

from archive.clock import utcnow


def new_id() -> str:
    return str(uuid.uuid4())


def enum_column(enum: type[StrEnum]) -> Any:
    """Store a StrEnum by value as VARCHAR: readable in SQL, and no PostgreSQL enum type to migrate."""
    return SAEnum(
        enum,
        native_enum=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Role(StrEnum):
    OFFICER = "officer"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"
    RECORDS_MANAGER = "records-manager"
    ADMIN = "admin"


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=128)
    role: Role = Field(sa_type=enum_column(Role))
    # SHA-256 of a 256-bit random token: the token itself is never stored.
    token_hash: str = Field(index=True, unique=True, max_length=64)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class Officer(SQLModel, table=True):
    __tablename__ = "officers"
    badge: str = Field(primary_key=True, max_length=64)
    name: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class Device(SQLModel, table=True):
    __tablename__ = "devices"
    serial: str = Field(primary_key=True, max_length=64)
    officer_badge: str | None = Field(default=None, foreign_key="officers.badge", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


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


class MediaState(StrEnum):
    RECEIVED = "received"  # bytes complete in S3, hash not yet checked
    VERIFIED = "verified"  # our SHA-256 of the stored bytes equals the dock's
    PROBED = "probed"
    DERIVED = "derived"  # proxy and poster made (or none possible)
    READY = "ready"  # proxy, poster and signed manifest exist
    UNPLAYABLE = "unplayable"  # archived, hashed and signed, but not decodable
    QUARANTINED = "quarantined"  # hash mismatch or other integrity failure: never archived
    DUPLICATE = "duplicate"  # same bytes as an archived original: recorded, not stored twice
    DELETED = "deleted"  # retention expired: bytes removed, a signed tombstone remains

    @property
    def terminal(self) -> bool:
        return self in {
            MediaState.READY,
            MediaState.UNPLAYABLE,
            MediaState.QUARANTINED,
            MediaState.DUPLICATE,
            MediaState.DELETED,
        }

    @property
    def hash_verified(self) -> bool:
        return self not in {MediaState.RECEIVED, MediaState.QUARANTINED}

    @property
    def archived(self) -> bool:
        """An original of our own is in storage (what retention governs)."""
        return self in {
            MediaState.VERIFIED,
            MediaState.PROBED,
            MediaState.DERIVED,
            MediaState.READY,
            MediaState.UNPLAYABLE,
        }


class ClockSource(StrEnum):
    MEASURED = "measured"  # the dock read the recorder's clock
    STATED = "stated"  # the officer stated the offset
    ASSUMED = "assumed"  # nothing known: zero, recorded as such


class MediaBase(SQLModel):
    sha256: str = Field(index=True, max_length=64)  # the digest the dock declared
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    content_type: str = Field(default="application/octet-stream", max_length=128)
    file_name: str = Field(max_length=255)
    source_path: str = Field(default="", max_length=1024)
    officer_badge: str = Field(foreign_key="officers.badge", index=True, max_length=64)
    device_serial: str = Field(foreign_key="devices.serial", index=True, max_length=64)
    recorded_at: datetime | None = None  # by the device clock
    received_at: datetime = Field(default_factory=utcnow)
    clock_offset_s: float = 0.0  # device clock minus true time, measured at docking
    clock_source: ClockSource = Field(default=ClockSource.ASSUMED, sa_type=enum_column(ClockSource))
    state: MediaState = Field(default=MediaState.RECEIVED, index=True, sa_type=enum_column(MediaState))
    state_reason: str = Field(default="", max_length=2000)
    duplicate_of: str | None = Field(default=None, max_length=36)


class Media(MediaBase, table=True):
    __tablename__ = "media"
    __table_args__ = (
        # One archived original per digest. NULL for items not (yet) archived, which SQL lets repeat.
        UniqueConstraint("archived_sha256", name="uq_media_archived_sha256"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    archived_sha256: str | None = Field(default=None, max_length=64)
    object_key: str = Field(max_length=200)
    upload_id: str | None = Field(default=None, max_length=36)
    probe: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    updated_at: datetime = Field(default_factory=utcnow)


class DerivativeKind(StrEnum):
    PROXY = "proxy"
    POSTER = "poster"


class Derivative(SQLModel, table=True):
    __tablename__ = "derivatives"
    __table_args__ = (UniqueConstraint("media_id", "kind", "profile", name="uq_derivative"),)
    id: int | None = Field(default=None, primary_key=True)
    media_id: str = Field(foreign_key="media.id", index=True, max_length=36)
    kind: DerivativeKind = Field(sa_type=enum_column(DerivativeKind))
    profile: str = Field(max_length=64)
    object_key: str = Field(max_length=300)
    sha256: str = Field(max_length=64)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    content_type: str = Field(max_length=128)
    method: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class Manifest(SQLModel, table=True):
    __tablename__ = "manifests"
    __table_args__ = (UniqueConstraint("media_id", "version", name="uq_manifest_version"),)
    id: int | None = Field(default=None, primary_key=True)
    media_id: str = Field(foreign_key="media.id", index=True, max_length=36)
    version: int = 1
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    signature: str = Field(max_length=200)
    key_id: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class Outcome(StrEnum):
    OK = "ok"
    DENIED = "denied"
    FAILED = "failed"


class Event(SQLModel, table=True):
    """One entry of the custody log. Append-only: database triggers refuse UPDATE and DELETE."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_subject", "subject_type", "subject_id"),)
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=160)  # "user:<name>" or "system:<component>"
    action: str = Field(index=True, max_length=64)
    subject_type: str = Field(max_length=32)
    subject_id: str = Field(max_length=64)
    client_addr: str = Field(default="", max_length=64)
    outcome: Outcome = Field(default=Outcome.OK, sa_type=enum_column(Outcome))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


# Public shapes -----------------------------------------------------------------------------


class DerivativePublic(SQLModel):
    kind: DerivativeKind
    profile: str
    sha256: str
    size: int
    content_type: str
    method: str


class MediaPublic(MediaBase):
    id: str
    archived_sha256: str | None
    probe: dict[str, Any] | None
    updated_at: datetime
    derivatives: list[DerivativePublic] = []


class EventPublic(SQLModel):
    id: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    client_addr: str
    outcome: Outcome
    details: dict[str, Any]

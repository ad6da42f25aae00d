"""Media: an original recording or document (``Media``), what was derived from it (``Derivative``)
and its signed statement (``Manifest``). Public shapes never carry storage keys."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from archive.clock import utcnow
from archive.models import enum_column, new_id


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
    # Issue 10, finding 3: why the recording is flagged for its device ("unregistered-device",
    # "other-officers-device", "retired-device") while the flag is open; it links nothing until then.
    device_flag: str | None = None


# Derivative.method of a proxy that is the original itself (H.264/AAC MP4 with its index at the
# front): no second copy exists; the row's object_key is the original's, in the originals bucket.
ORIGINAL_AS_PROXY = "original"


def derivative_bucket(d: Derivative, originals: str, derived: str) -> str:
    """The bucket a derivative's bytes are in."""
    return originals if d.method == ORIGINAL_AS_PROXY else derived

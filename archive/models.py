"""The core's own tables and the column helpers every domain's models use.

Each domain keeps its tables in its package (``archive/<domain>/models.py``): accounts, media, ingest,
cases, ledger, ... Here live only what belongs to no single domain: the custody log (``Event``) and
the helpers ``new_id`` and ``enum_column``. Schema changes go through Alembic (``migrations/``);
``archive.schema`` imports every domain's models so that the metadata is complete.

Naming follows ``XBase`` / ``X(table=True)`` / ``XPublic``: public models are what the API
returns; storage keys and token hashes never leave the server.
"""

from __future__ import annotations

import importlib
import secrets
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


def new_addr_key() -> str:
    """A fresh 256-bit key for one event's address commitment (hex), see :class:`Event`."""
    return secrets.token_hex(32)


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
    # The key of the address commitment (issue 10, finding 6): the log's leaf holds
    # HMAC-SHA256(addr_key, client_addr), not the address. NULL for events written before migration
    # 0014_ledger_addr, whose (version 1) leaves hold the address itself. Never leaves the archive
    # except to someone entitled to the address (archive.ledger.services.leaf_document).
    addr_key: str | None = Field(default_factory=new_addr_key, max_length=64, nullable=True)


class Tombstone(SQLModel, table=True):
    """What was deleted, under which rule, signed: proof that a deletion followed the policy.

    A custody fact, so it lives in the core: retention writes it (``retention.services``), the
    verifier checks it against the custody log (``archive.audit``)."""

    __tablename__ = "tombstones"
    __table_args__ = (UniqueConstraint("media_id", name="uq_tombstone_media"),)
    id: int | None = Field(default=None, primary_key=True)
    media_id: str = Field(foreign_key="media.id", max_length=36)
    sha256: str = Field(max_length=64)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    signature: str = Field(max_length=200)
    key_id: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


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


# Names that moved to their domain's package in issue 9. Branches written before it still import
# them from here; new code imports them from their home. Resolved lazily (PEP 562) because those
# modules import this one.
_MOVED = {
    "Role": "archive.accounts.models",
    "User": "archive.accounts.models",
    "Officer": "archive.accounts.models",
    "Device": "archive.accounts.models",
    "UploadState": "archive.ingest.models",
    "Upload": "archive.ingest.models",
    "MediaState": "archive.media.models",
    "ClockSource": "archive.media.models",
    "MediaBase": "archive.media.models",
    "Media": "archive.media.models",
    "DerivativeKind": "archive.media.models",
    "Derivative": "archive.media.models",
    "Manifest": "archive.media.models",
    "DerivativePublic": "archive.media.models",
    "MediaPublic": "archive.media.models",
}


def __getattr__(name: str) -> Any:
    home = _MOVED.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)

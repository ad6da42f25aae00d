"""Ledger tables. All three are append-only (database triggers, migration 0003_ledger).

- ``log_leaves``: leaf ``idx`` (dense, from 0) for one committed event, and the leaf hash.
- ``log_nodes``: hashes of perfect aligned subtrees of 256 leaves and more, so a root or a proof
  over 10^6 leaves reads a few dozen rows instead of every leaf.
- ``log_checkpoints``: signed statements (tree size, root hash, time, key id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, SmallInteger
from sqlmodel import Field, SQLModel

from archive.clock import utcnow


class LogLeaf(SQLModel, table=True):
    __tablename__ = "log_leaves"
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    # Unique: one event is never sequenced twice, even by two sequencers on SQLite (no advisory lock).
    # No foreign key on purpose: it would make ``TRUNCATE events`` fail on the key instead of on the
    # append-only trigger, and a leaf whose event row vanished is exactly what verify must report.
    event_id: int = Field(unique=True)
    leaf_hash: str = Field(max_length=64)
    sequenced_at: datetime = Field(default_factory=utcnow)


class LogNode(SQLModel, table=True):
    __tablename__ = "log_nodes"
    level: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: str = Field(max_length=64)


class CheckpointBase(SQLModel):
    tree_size: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    root_hash: str = Field(max_length=64)
    signed_at: datetime
    key_id: str = Field(max_length=32)
    signature: str = Field(max_length=200)


class Checkpoint(CheckpointBase, table=True):
    __tablename__ = "log_checkpoints"
    id: int | None = Field(default=None, primary_key=True)
    # Exactly the JSON that was signed (RFC 8785 of this is what the signature covers).
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class CheckpointPublic(CheckpointBase):
    id: int
    body: dict[str, Any]

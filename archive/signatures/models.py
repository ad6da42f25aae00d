"""Users' registered public keys and the signatures on record versions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from archive.clock import utcnow
from archive.models import enum_column


class SignerKind(StrEnum):
    AUTHOR = "author"  # a person, with a key only they hold
    ARCHIVE = "archive"  # the archive's countersignature (archive/signing.py Keyring)


class UserKey(SQLModel, table=True):
    __tablename__ = "user_signing_keys"
    key_id: str = Field(primary_key=True, max_length=32)  # archive.signing.key_id_for
    user_name: str = Field(max_length=128, index=True)
    public_key_pem: str = Field(max_length=400)
    registered_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class RecordSignature(SQLModel, table=True):
    __tablename__ = "record_signatures"
    __table_args__ = (
        UniqueConstraint("record_id", "version", "signer", "key_id", name="uq_record_signature"),
        Index("ix_record_signatures_record", "record_id", "version"),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="cases.id", max_length=36)
    record_id: str = Field(max_length=36)
    version: int
    kind: SignerKind = Field(sa_type=enum_column(SignerKind))
    signer: str = Field(max_length=160)  # "user:<name>" or "archive"
    key_id: str = Field(max_length=32)
    signature_b64: str = Field(max_length=200)
    document_sha256: str = Field(max_length=64)
    signed_at: datetime = Field(default_factory=utcnow)


class KeyRegister(SQLModel):
    public_key_pem: str = Field(min_length=1, max_length=400)


class UserKeyPublic(SQLModel):
    key_id: str
    user_name: str
    public_key_pem: str
    registered_at: datetime
    revoked_at: datetime | None


class SignatureSubmit(SQLModel):
    key_id: str = Field(min_length=1, max_length=32)
    signature: str = Field(min_length=1, max_length=200)  # base64 Ed25519 signature


class RecordSignaturePublic(SQLModel):
    record_id: str
    version: int
    kind: SignerKind
    signer: str
    key_id: str
    signature_b64: str
    document_sha256: str
    signed_at: datetime

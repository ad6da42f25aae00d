"""Parties and the cases that name them. Identity numbers are stored only encrypted (see crypto.py)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from archive.clock import utcnow
from archive.models import enum_column, new_id


class PartyKind(StrEnum):
    PERSON = "person"
    ORGANISATION = "organisation"


class IdDocType(StrEnum):
    RESIDENT_ID = "resident-id"  # 居民身份证
    PASSPORT = "passport"  # 护照
    CREDIT_CODE = "credit-code"  # 统一社会信用代码
    OTHER = "other"


class PartyRole(StrEnum):
    SUBJECT = "subject"  # 当事人 / 行政相对人
    SUSPECT = "suspect"  # 违法嫌疑人
    VICTIM = "victim"  # 被侵害人
    WITNESS = "witness"  # 证人
    OTHER = "other"


LABELS_ZH: dict[str, str] = {
    PartyKind.PERSON: "自然人",
    PartyKind.ORGANISATION: "法人或其他组织",
    IdDocType.RESIDENT_ID: "居民身份证",
    IdDocType.PASSPORT: "护照",
    IdDocType.CREDIT_CODE: "统一社会信用代码",
    IdDocType.OTHER: "其他证件",
    PartyRole.SUBJECT: "当事人",
    PartyRole.SUSPECT: "违法嫌疑人",
    PartyRole.VICTIM: "被侵害人",
    PartyRole.WITNESS: "证人",
    PartyRole.OTHER: "其他",
}


class PartyBase(SQLModel):
    kind: PartyKind = Field(sa_type=enum_column(PartyKind))
    name: str = Field(max_length=300)
    id_doc_type: IdDocType = Field(sa_type=enum_column(IdDocType))


class Party(PartyBase, table=True):
    __tablename__ = "parties"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    id_number_enc: str = Field(max_length=400)  # "v1:<key id>:<base64 nonce + AES-GCM ciphertext>"
    id_number_index: str = Field(max_length=64, index=True)  # HMAC blind index, for finding again
    id_number_last: str = Field(max_length=4)  # what a masked view shows; no more than that
    id_number_len: int
    created_by: str = Field(max_length=160)
    created_at: datetime = Field(default_factory=utcnow)


class CaseParty(SQLModel, table=True):
    __tablename__ = "case_parties"
    case_id: str = Field(foreign_key="cases.id", primary_key=True, max_length=36)
    party_id: str = Field(foreign_key="parties.id", primary_key=True, max_length=36, index=True)
    role: PartyRole = Field(sa_type=enum_column(PartyRole))
    added_by: str = Field(max_length=160)
    added_at: datetime = Field(default_factory=utcnow)


class PartyCreate(PartyBase):
    id_number: str = Field(min_length=1, max_length=64)
    role: PartyRole = PartyRole.SUBJECT


class PartyPublic(PartyBase):
    id: str
    id_number: str  # masked unless the caller may read identity numbers
    id_number_masked: bool
    role: PartyRole | None = None  # in the case it was listed for
    labels_zh: dict[str, str] = {}


class PartyCasePublic(SQLModel):
    case_id: str
    number: str
    title: str
    role: PartyRole


class PartyRecordPublic(SQLModel):
    case_id: str
    record_id: str
    version: int
    title: str
    doc_kind: str
    start: datetime
    end: datetime


class PartyRecordingPublic(SQLModel):
    case_id: str
    media_id: str
    file_name: str
    officer: str
    start: datetime | None
    end: datetime | None


class PartyView(SQLModel):
    """Text and audio-video for one party found together (对同一执法对象的文字记录、音像记录集中储存)."""

    party: PartyPublic
    cases: list[PartyCasePublic]
    records: list[PartyRecordPublic]
    recordings: list[PartyRecordingPublic]

"""Accounts: users (with their role and token hash), officers (by badge) and their devices."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from archive.clock import utcnow
from archive.models import enum_column, new_id


class Role(StrEnum):
    OFFICER = "officer"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"
    RECORDS_MANAGER = "records-manager"
    ADMIN = "admin"
    LEGAL_REVIEWER = "legal-reviewer"  # 法制审核人员: designated legal staff (issue 12)
    # Records the outcome of collective discussion (集体讨论, issue 12); approves another person's
    # copy-out request, never their own (调取审批, issue 13).
    APPROVER = "approver"
    PUBLISHER = "publisher"  # enforcement publicity: redacts, approves, publishes, withdraws


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=128)
    role: Role = Field(sa_type=enum_column(Role))
    # SHA-256 of a 256-bit random token: the token itself is never stored.
    token_hash: str = Field(index=True, unique=True, max_length=64)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    # The user's language for pages, API errors and labels ("zh-CN", "en"); None: the browser's
    # Accept-Language, else the agency's default (archive.i18n).
    language: str | None = Field(default=None, max_length=16)
    # When the current token was issued (`custody users add` / `rotate`); it expires
    # Settings.token_ttl_days later (0: never). Tokens issued before migration 0012 count from it.
    token_issued_at: datetime | None = None
    # Last authenticated use by token or page session (written at most once a minute).
    last_seen_at: datetime | None = None


class SessionVia(StrEnum):
    OIDC = "oidc"  # the agency's single sign-on (OpenID Connect)


class UserSession(SQLModel, table=True):
    """A page session: a random bearer token (``cps_...``, only its SHA-256 stored) given after a
    sign-in, valid until it is ended (logout, disable, rotate), idle for Settings.session_idle_s, or
    Settings.session_max_s after it began, whichever comes first."""

    __tablename__ = "user_sessions"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    via: SessionVia = Field(sa_type=enum_column(SessionVia))
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = Field(default=None, max_length=32)
    client_addr: str = Field(default="", max_length=64)


class Officer(SQLModel, table=True):
    __tablename__ = "officers"
    badge: str = Field(primary_key=True, max_length=64)
    name: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class DeviceStatus(StrEnum):
    """Issue 10, finding 3: a recorder belongs to whoever an administrator or records manager
    registered it to, never to the first officer who docked it."""

    UNREGISTERED = "unregistered"  # docked before anyone registered it: recordings flagged, no links
    REGISTERED = "registered"  # to one officer, or to a pool of officers
    RETIRED = "retired"  # out of service: recordings still archived, flagged, no links


class Device(SQLModel, table=True):
    __tablename__ = "devices"
    serial: str = Field(primary_key=True, max_length=64)
    # The one officer it is registered to (None: a pool device, or not registered).
    officer_badge: str | None = Field(default=None, foreign_key="officers.badge", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    status: DeviceStatus = Field(default=DeviceStatus.UNREGISTERED, sa_type=enum_column(DeviceStatus))
    pool: bool = False  # registered to the officers in ``device_pool_members``
    registered_by: str | None = Field(default=None, max_length=160)
    registered_at: datetime | None = None
    note: str = Field(default="", max_length=2000)  # the reason of the last registration or retirement


class DevicePoolMember(SQLModel, table=True):
    """An officer who may dock a pool device (a recorder shared by a shift or a unit)."""

    __tablename__ = "device_pool_members"
    serial: str = Field(foreign_key="devices.serial", primary_key=True, max_length=64)
    badge: str = Field(foreign_key="officers.badge", primary_key=True, max_length=64)


class DeviceFlagReason(StrEnum):
    UNREGISTERED = "unregistered-device"  # the serial is not registered (or was never seen)
    OTHER_OFFICER = "other-officers-device"  # registered to another officer (or a pool without them)
    RETIRED = "retired-device"


class DeviceFlag(SQLModel, table=True):
    """A recording docked from a device the docking officer may not dock: archived (evidence is never
    refused) but linked to nothing until the device is registered to them."""

    __tablename__ = "device_flags"
    media_id: str = Field(foreign_key="media.id", primary_key=True, max_length=36)
    device_serial: str = Field(foreign_key="devices.serial", index=True, max_length=64)
    officer_badge: str = Field(max_length=64)  # who docked it (the recording's officer)
    reason: DeviceFlagReason = Field(sa_type=enum_column(DeviceFlagReason))
    flagged_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None
    resolved_by: str | None = Field(default=None, max_length=160)


class DevicePublic(SQLModel):
    serial: str
    status: DeviceStatus
    officer: str | None
    pool: list[str]
    registered_by: str | None
    registered_at: datetime | None
    note: str
    flagged_media: int  # recordings of this device still flagged


class DeviceFlagPublic(SQLModel):
    media_id: str
    device_serial: str
    officer_badge: str
    reason: DeviceFlagReason
    flagged_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None

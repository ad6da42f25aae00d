"""The device registry (issue 10, finding 3): recorders registered to an officer or a pool, and the
recordings flagged because their officer may not dock the device."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import ClientAddr, CurrentUser, SessionDep
from archive.accounts import devices
from archive.accounts.models import DeviceFlagPublic, DevicePublic, DeviceStatus

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


class Registration(BaseModel):
    serial: str = Field(min_length=1, max_length=200)
    officer: str | None = Field(default=None, max_length=64)  # one officer ...
    pool: list[str] | None = Field(default=None, max_length=200)  # ... or the officers of a pool
    reason: str = Field(max_length=2000)


class Retirement(BaseModel):
    reason: str = Field(max_length=2000)


@router.post("", response_model=DevicePublic, status_code=201)
def register(body: Registration, session: SessionDep, user: CurrentUser, addr: ClientAddr) -> DevicePublic:
    """Register (or re-register) a recorder to one officer or to a pool: administrators and records
    managers. Its recordings still flagged whose officer may now dock it are released: the auto-link
    rule runs for them, its links pending until a records manager confirms them."""
    device = devices.register(
        session, user, body.serial, officer=body.officer, pool=body.pool, reason=body.reason, addr=addr
    )
    return devices.public(session, device)


@router.get("", response_model=list[DevicePublic])
def list_devices(
    session: SessionDep, user: CurrentUser, status: DeviceStatus | None = None
) -> list[DevicePublic]:
    return devices.list_devices(session, user, status=status)


@router.get("/flagged", response_model=list[DeviceFlagPublic])
def flagged(
    session: SessionDep, user: CurrentUser, include_resolved: bool = False, serial: str | None = None
) -> list[DeviceFlagPublic]:
    """Recordings docked from an unregistered device, another officer's device or a retired one."""
    return devices.flagged_media(session, user, include_resolved=include_resolved, serial=serial)


@router.get("/{serial}", response_model=DevicePublic)
def one(serial: str, session: SessionDep, user: CurrentUser) -> DevicePublic:
    return devices.get_device(session, user, serial)


@router.post("/{serial}/retire", response_model=DevicePublic)
def retire(
    serial: str, body: Retirement, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> DevicePublic:
    """Take a recorder out of service: what it docks afterwards is archived, flagged, linked to nothing."""
    return devices.public(session, devices.retire(session, user, serial, reason=body.reason, addr=addr))

"""The device registry (issue 10, finding 3): who may dock which recorder.

A recorder is registered by an administrator or a records manager, either to one officer or to a
pool (the officers named for it: a recorder shared by a shift or a unit). Docking never refuses
evidence: a recording from a serial nobody registered, from a device registered to someone else
(or to a pool without the docking officer), or from a retired device is archived as usual, but
flagged (``device_flags``, listed for records managers, admins and auditors) and linked to nothing
by the auto-link rule. Registering the device to its officer later resolves the flags and runs the
auto-link rule for those recordings, whose links are then pending until a records manager confirms
them (``archive.cases.linking.confirm_link``), exactly like links the record's writer could not see.

Every change is a custody event: ``device.seen`` (an unknown serial docked), ``media.device_flag``,
``device.register``, ``device.retire``, ``media.device_flag.resolve``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlmodel import Session, col, func, select

from archive import events
from archive.access import Permission, actor, authorize
from archive.accounts.errors import InvalidRegistration, InvalidSerial, UnknownDevice
from archive.accounts.models import (
    Device,
    DeviceFlag,
    DeviceFlagPublic,
    DeviceFlagReason,
    DevicePoolMember,
    DevicePublic,
    DeviceStatus,
    Officer,
    User,
)
from archive.clock import Clock, utcnow
from archive.i18n import _

# The serials a dock may send (archive.ingest.uploads) are the serials that can be registered.
SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")
# Scans and PDFs uploaded to a case stand under this "device" (archive.cases.access): never a recorder.
RESERVED = frozenset({"case-attachment"})
POOL_MAX = 200


def _serial(serial: str) -> str:
    if not SERIAL.match(serial or "") or serial in RESERVED:
        raise InvalidSerial(
            _(
                "device serial {serial}: 1-64 letters, digits, '.', '_', ':', '@' or '-', "
                "starting with a letter or digit"
            ).format(serial=repr(serial[:70]))
        )
    return serial


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidRegistration(_("a reason is required"))
    if len(reason) > 2000:
        raise InvalidRegistration(_("reason: at most 2000 characters"))
    return reason


def pool_of(session: Session, serial: str) -> list[str]:
    return sorted(session.exec(select(DevicePoolMember.badge).where(DevicePoolMember.serial == serial)))


def may_dock(session: Session, device: Device, badge: str) -> DeviceFlagReason | None:
    """None when ``badge`` may dock ``device``; else why its recordings are flagged."""
    if device.status is DeviceStatus.UNREGISTERED:
        return DeviceFlagReason.UNREGISTERED
    if device.status is DeviceStatus.RETIRED:
        return DeviceFlagReason.RETIRED
    if device.pool:
        member = session.get(DevicePoolMember, (device.serial, badge))
        return None if member is not None else DeviceFlagReason.OTHER_OFFICER
    return None if device.officer_badge == badge else DeviceFlagReason.OTHER_OFFICER


# --------------------------------------------------------------------------- the dock's hook


def check_dock(
    session: Session, serial: str, badge: str, *, who: str, addr: str = "", clock: Clock = utcnow
) -> DeviceFlagReason | None:
    """Called by ingest where a finished upload's device is resolved, before its media row is
    written: makes sure the serial has a row (an unknown serial becomes an unregistered device,
    logged as ``device.seen``: it belongs to nobody) and says whether the recording must be flagged.
    Scans uploaded to a case (``case-attachment``) are never flagged: they never auto-link."""
    device = session.get(Device, serial)
    if device is None:
        device = Device(serial=serial, status=DeviceStatus.UNREGISTERED, created_at=clock())
        session.add(device)
        session.flush()
        if serial in RESERVED:
            return None
        events.record(
            session,
            actor=who,
            action="device.seen",
            subject_type="device",
            subject_id=serial,
            client_addr=addr,
            clock=clock,
            details={"officer": badge, "status": DeviceStatus.UNREGISTERED},
        )
    if serial in RESERVED:
        return None
    return may_dock(session, device, badge)


def flag_media(
    session: Session,
    media_id: str,
    serial: str,
    badge: str,
    reason: DeviceFlagReason | None,
    *,
    who: str,
    addr: str = "",
    clock: Clock = utcnow,
) -> DeviceFlag | None:
    """After the media row is written: flag it when :func:`check_dock` said so (never refuse it)."""
    if reason is None or session.get(DeviceFlag, media_id) is not None:
        return None
    flag = DeviceFlag(
        media_id=media_id, device_serial=serial, officer_badge=badge, reason=reason, flagged_at=clock()
    )
    session.add(flag)
    session.flush()
    events.record(
        session,
        actor=who,
        action="media.device_flag",
        subject_type="media",
        subject_id=media_id,
        client_addr=addr,
        clock=clock,
        details={"device": serial, "officer": badge, "reason": reason},
    )
    return flag


def is_flagged(session: Session, media_id: str) -> bool:
    flag = session.get(DeviceFlag, media_id)
    return flag is not None and flag.resolved_at is None


# --------------------------------------------------------------------------- the registry


def _badges(session: Session, badges: Sequence[str]) -> list[str]:
    clean = sorted({b.strip() for b in badges if b and b.strip()})
    if not clean:
        raise InvalidRegistration(_("a pool needs at least one officer"))
    if len(clean) > POOL_MAX:
        raise InvalidRegistration(_("a pool has at most {n} officers").format(n=POOL_MAX))
    missing = [b for b in clean if session.get(Officer, b) is None]
    if missing:
        raise InvalidRegistration(
            _("no officer with badge {badges}").format(badges=", ".join(repr(b[:64]) for b in missing[:5]))
        )
    return clean


def register(
    session: Session,
    user: User,
    serial: str,
    *,
    officer: str | None = None,
    pool: Sequence[str] | None = None,
    reason: str,
    addr: str = "",
    clock: Clock = utcnow,
    buffer_s: float | None = None,
) -> Device:
    """Register (or re-register) a recorder to one officer or to a pool; administrators and records
    managers only. Recordings of it still flagged whose officer may now dock it are released: their
    flags resolved and the auto-link rule run for them, its links pending until confirmed."""
    authorize(user, Permission.DEVICE_MANAGE, _("register devices"))
    serial = _serial(serial)
    reason = _reason(reason)
    if (officer is None) == (pool is None):
        raise InvalidRegistration(_("register a device to one officer or to a pool, not both or neither"))
    members = _badges(session, [officer] if officer is not None else list(pool or []))
    device = session.get(Device, serial)
    before = None
    if device is None:
        device = Device(serial=serial, created_at=clock())
    else:
        before = {
            "status": device.status,
            "officer": device.officer_badge,
            "pool": pool_of(session, serial) if device.pool else None,
        }
    for m in session.exec(select(DevicePoolMember).where(DevicePoolMember.serial == serial)).all():
        session.delete(m)
    device.status = DeviceStatus.REGISTERED
    device.pool = pool is not None
    device.officer_badge = None if pool is not None else members[0]
    device.registered_by, device.registered_at, device.note = actor(user), clock(), reason
    session.add(device)
    session.flush()
    if pool is not None:
        for b in members:
            session.add(DevicePoolMember(serial=serial, badge=b))
        session.flush()
    events.record(
        session,
        actor=actor(user),
        action="device.register",
        subject_type="device",
        subject_id=serial,
        client_addr=addr,
        clock=clock,
        details={
            "officer": device.officer_badge,
            "pool": members if pool is not None else None,
            "reason": reason,
            "before": before,
        },
    )
    _release_flags(session, user, device, addr=addr, clock=clock, buffer_s=buffer_s)
    return device


def _release_flags(
    session: Session, user: User, device: Device, *, addr: str, clock: Clock, buffer_s: float | None
) -> None:
    from archive.cases.linking import autolink_media  # cases import accounts' models, not this module
    from archive.config import get_settings
    from archive.media.models import Media

    buffer = get_settings().autolink_buffer_s if buffer_s is None else buffer_s
    flags = session.exec(
        select(DeviceFlag)
        .where(DeviceFlag.device_serial == device.serial, col(DeviceFlag.resolved_at).is_(None))
        .order_by(col(DeviceFlag.media_id))
    ).all()
    for flag in flags:
        if may_dock(session, device, flag.officer_badge) is not None:
            continue
        flag.resolved_at, flag.resolved_by = clock(), actor(user)
        session.add(flag)
        session.flush()
        item = session.get(Media, flag.media_id)
        linked = (
            autolink_media(session, item, buffer_s=buffer, who=actor(user), clock=clock, pending=True)
            if item is not None
            else []
        )
        events.record(
            session,
            actor=actor(user),
            action="media.device_flag.resolve",
            subject_type="media",
            subject_id=flag.media_id,
            client_addr=addr,
            clock=clock,
            details={"device": device.serial, "officer": flag.officer_badge, "pending_links": linked},
        )


def retire(
    session: Session, user: User, serial: str, *, reason: str, addr: str = "", clock: Clock = utcnow
) -> Device:
    """Take a recorder out of service: what it docks from now on is archived, flagged, linked to nothing."""
    authorize(user, Permission.DEVICE_MANAGE, _("retire devices"))
    reason = _reason(reason)
    device = session.get(Device, _serial(serial))
    if device is None:
        raise UnknownDevice(_("no device {serial}").format(serial=serial))
    before = device.status
    device.status, device.note = DeviceStatus.RETIRED, reason
    session.add(device)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="device.retire",
        subject_type="device",
        subject_id=serial,
        client_addr=addr,
        clock=clock,
        details={"reason": reason, "before": before, "officer": device.officer_badge},
    )
    return device


def public(session: Session, device: Device) -> DevicePublic:
    flagged = session.exec(
        select(func.count())
        .select_from(DeviceFlag)
        .where(DeviceFlag.device_serial == device.serial, col(DeviceFlag.resolved_at).is_(None))
    ).one()
    return DevicePublic(
        serial=device.serial,
        status=device.status,
        officer=device.officer_badge,
        pool=pool_of(session, device.serial) if device.pool else [],
        registered_by=device.registered_by,
        registered_at=device.registered_at,
        note=device.note,
        flagged_media=int(flagged),
    )


def list_devices(session: Session, user: User, *, status: DeviceStatus | None = None) -> list[DevicePublic]:
    authorize(user, Permission.DEVICE_READ, _("list devices"))
    stmt = select(Device).where(col(Device.serial).not_in(sorted(RESERVED)))
    if status is not None:
        stmt = stmt.where(Device.status == status)
    return [public(session, d) for d in session.exec(stmt.order_by(col(Device.serial)))]


def get_device(session: Session, user: User, serial: str) -> DevicePublic:
    authorize(user, Permission.DEVICE_READ, _("list devices"))
    device = session.get(Device, serial)
    if device is None or serial in RESERVED:
        raise UnknownDevice(_("no device {serial}").format(serial=serial[:70]))
    return public(session, device)


def flagged_media(
    session: Session, user: User, *, include_resolved: bool = False, serial: str | None = None
) -> list[DeviceFlagPublic]:
    """Recordings docked from a device their officer may not dock ("unregistered device")."""
    authorize(user, Permission.DEVICE_READ, _("list recordings from unregistered devices"))
    stmt = select(DeviceFlag)
    if not include_resolved:
        stmt = stmt.where(col(DeviceFlag.resolved_at).is_(None))
    if serial is not None:
        stmt = stmt.where(DeviceFlag.device_serial == serial)
    rows = session.exec(stmt.order_by(col(DeviceFlag.flagged_at), col(DeviceFlag.media_id))).all()
    return [DeviceFlagPublic.model_validate(r.model_dump()) for r in rows]

"""Issue 10, finding 3: the first officer to dock a serial no longer owns it. Devices are registered
by an administrator or a records manager to an officer or a pool; a recording from a device its
officer may not dock is archived, flagged and linked to nothing until the device is registered to
them, and then its links wait for a records manager's confirmation."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive.accounts import devices
from archive.accounts import services as accounts
from archive.accounts.errors import InvalidRegistration, InvalidSerial, UnknownDevice
from archive.accounts.models import Device, DeviceFlag, DeviceFlagReason, DeviceStatus, Role, User
from archive.cases import services as cases
from archive.cases.models import CaseKind, CaseMedia, DocumentKind, Stage
from archive.db import session_scope
from archive.errors import Forbidden
from archive.ingest import uploads
from archive.media.models import Media, MediaState
from archive.models import Event
from tests.case_factories import T


@pytest.fixture
def people(engine: Engine) -> dict[str, User]:
    out = {}
    with session_scope(engine) as s:
        for name, role in [
            ("clerk", Role.RECORDS_MANAGER),
            ("root", Role.ADMIN),
            ("rev", Role.REVIEWER),
            ("aud", Role.AUDITOR),
            ("0815", Role.OFFICER),
            ("4711", Role.OFFICER),
            ("9999", Role.OFFICER),
        ]:
            out[name] = accounts.add_user(s, name, role)[0]
    return out


def dock(engine: Engine, officer: str, serial: str, minutes: int = 5) -> str:
    """A finished upload recorded exactly as the tus endpoint records it, then made ready."""
    with session_scope(engine) as s:
        user = s.exec(select(User).where(User.name == officer)).one()
        sha = hashlib.sha256(f"{officer}{serial}{minutes}".encode()).hexdigest()
        meta = {"filename": f"{serial}-{minutes}.mp4", "officer": officer, "device": serial, "sha256": sha}
        up = uploads.Upload(length=1000, part_size=5 * 1024 * 1024, metadata_=meta, created_by=user.id or 0)
        up.object_key = f"originals/{up.id}"
        s.add(up)
        s.flush()
        media = uploads.complete_upload(s, up, user, "10.0.0.5", None)
        media.state, media.archived_sha256 = MediaState.READY, sha
        media.recorded_at, media.probe = T + timedelta(minutes=minutes), {"duration_s": 60.0}
        s.add(media)
        return media.id


def _case_with_record(
    engine: Engine, clerk: User, badges: list[str], number: str = "D-1"
) -> tuple[str, list[str]]:
    with session_scope(engine) as s:
        case = cases.create_case(s, clerk, cases.CaseInput(number, "Stop", CaseKind.CRIMINAL))
        for b in badges:
            cases.add_case_officer(s, clerk, case.id, b, "at the scene")
        _rec, linked = cases.add_record(
            s,
            clerk,
            case.id,
            cases.RecordInput(
                stage=Stage.INVESTIGATION,
                doc_kind=DocumentKind.INSPECTION_RECORD,
                author=badges[0],
                occurred_from=T,
                occurred_to=T + timedelta(minutes=30),
                body="inspection",
                officers=badges,
            ),
            buffer_s=300.0,
        )
        return case.id, linked


def _actions(engine: Engine, subject: str) -> list[str]:
    with Session(engine) as s:
        return [
            e.action for e in s.exec(select(Event).where(Event.subject_id == subject).order_by(col(Event.id)))
        ]


def test_an_unknown_serial_is_archived_flagged_and_links_nothing_until_registered(
    engine: Engine, people: dict[str, User]
) -> None:
    mid = dock(engine, "0815", "BC-NEW")
    with Session(engine) as s:
        device = s.get(Device, "BC-NEW")
        assert (
            device is not None and device.status is DeviceStatus.UNREGISTERED and device.officer_badge is None
        )
        flag = s.get(DeviceFlag, mid)
        assert flag is not None and flag.reason is DeviceFlagReason.UNREGISTERED and flag.resolved_at is None
        item = s.get(Media, mid)
        assert item is not None and item.state is MediaState.READY  # archived: evidence is never refused
    assert _actions(engine, "BC-NEW") == ["device.seen"]
    assert _actions(engine, mid) == ["media.receive", "media.device_flag"]
    # A record naming the officer links nothing from it, and neither does the rule from its side.
    case_id, linked = _case_with_record(engine, people["clerk"], ["0815"])
    assert linked == []
    with session_scope(engine) as s:
        item = s.get(Media, mid)
        assert item is not None and cases.autolink_media(s, item, buffer_s=300.0) == []
    # Records managers and auditors see it as "unregistered device"; officers and reviewers may not.
    with Session(engine) as s:
        for who in ("clerk", "root", "aud"):
            rows = devices.flagged_media(s, people[who])
            assert [(r.media_id, r.reason) for r in rows] == [(mid, "unregistered-device")], who
        for who in ("rev", "0815"):
            with pytest.raises(Forbidden):
                devices.flagged_media(s, people[who])

    # Registered to its officer: the flag is resolved and the link made, pending a confirmation.
    with session_scope(engine) as s:
        out = devices.public(
            s,
            devices.register(
                s, people["root"], "BC-NEW", officer="0815", reason="issued to 0815", addr="10.0.0.1"
            ),
        )
        assert out.status is DeviceStatus.REGISTERED and out.officer == "0815" and out.flagged_media == 0
    with Session(engine) as s:
        flag = s.get(DeviceFlag, mid)
        assert flag is not None and flag.resolved_by == "user:root"
        link = s.exec(select(CaseMedia).where(CaseMedia.media_id == mid)).one()
        assert link.case_id == case_id and link.pending
        assert devices.flagged_media(s, people["clerk"]) == []
        assert len(devices.flagged_media(s, people["clerk"], include_resolved=True)) == 1
    assert _actions(engine, "BC-NEW") == ["device.seen", "device.register"]
    assert _actions(engine, mid)[-2:] == ["case.link", "media.device_flag.resolve"]
    with session_scope(engine) as s:
        cases.confirm_link(s, people["clerk"], case_id, mid)
    # The next recording from it is not flagged and links at once.
    again = dock(engine, "0815", "BC-NEW", minutes=10)
    with Session(engine) as s:
        assert s.get(DeviceFlag, again) is None


def test_squatting_another_officers_device_a_pool_and_a_retired_device(
    engine: Engine, people: dict[str, User]
) -> None:
    with session_scope(engine) as s:
        devices.register(s, people["clerk"], "BC-1", officer="0815", reason="issued")
        devices.register(s, people["clerk"], "BC-POOL", pool=["0815", "4711"], reason="night shift")
        devices.register(s, people["clerk"], "BC-OLD", officer="9999", reason="issued")
        devices.retire(s, people["root"], "BC-OLD", reason="lens broken")
    own = dock(engine, "0815", "BC-1")
    squat = dock(engine, "4711", "BC-1", minutes=6)  # 4711 docks 0815's recorder
    pooled = [dock(engine, "0815", "BC-POOL", minutes=7), dock(engine, "4711", "BC-POOL", minutes=8)]
    outsider = dock(engine, "9999", "BC-POOL", minutes=9)
    retired = dock(engine, "9999", "BC-OLD", minutes=11)
    with Session(engine) as s:
        flags = {f.media_id: f.reason for f in s.exec(select(DeviceFlag))}
        assert flags == {
            squat: DeviceFlagReason.OTHER_OFFICER,
            outsider: DeviceFlagReason.OTHER_OFFICER,
            retired: DeviceFlagReason.RETIRED,
        }
        device = s.get(Device, "BC-1")
        assert device is not None and device.officer_badge == "0815"  # docking did not take it over
    # A case with all three officers on it: only the recordings their officers may dock link.
    _case_id, linked = _case_with_record(engine, people["clerk"], ["0815", "4711", "9999"])
    assert set(linked) == {own, *pooled}
    with Session(engine) as s:
        listed = {d.serial: d for d in devices.list_devices(s, people["aud"])}
        assert listed["BC-POOL"].pool == ["0815", "4711"] and listed["BC-POOL"].officer is None
        assert listed["BC-OLD"].status is DeviceStatus.RETIRED and listed["BC-1"].flagged_media == 1
        assert [d.serial for d in devices.list_devices(s, people["clerk"], status=DeviceStatus.RETIRED)] == [
            "BC-OLD"
        ]
    # Re-registering the pool with 9999 in it releases 9999's recording (its link pending).
    with session_scope(engine) as s:
        devices.register(s, people["clerk"], "BC-POOL", pool=["0815", "4711", "9999"], reason="9999 joined")
    with Session(engine) as s:
        assert s.get(DeviceFlag, outsider).resolved_at is not None  # type: ignore[union-attr]
        assert s.get(DeviceFlag, squat).resolved_at is None  # type: ignore[union-attr]
        assert s.exec(select(CaseMedia).where(CaseMedia.media_id == outsider)).one().pending
        ev = s.exec(
            select(Event).where(Event.action == "device.register", Event.subject_id == "BC-POOL")
        ).all()
        assert ev[-1].details["before"]["pool"] == ["0815", "4711"] and ev[-1].details["pool"] == [
            "0815",
            "4711",
            "9999",
        ]


def test_registration_is_for_admins_and_records_managers_and_bad_input_changes_nothing(
    engine: Engine, people: dict[str, User]
) -> None:
    dock(engine, "0815", "BC-2")
    before = _actions(engine, "BC-2")
    with session_scope(engine) as s:
        for who in ("rev", "aud", "0815"):
            with pytest.raises(Forbidden):
                devices.register(s, people[who], "BC-2", officer="0815", reason="mine")
            with pytest.raises(Forbidden):
                devices.retire(s, people[who], "BC-2", reason="gone")
        for who in ("rev", "0815"):
            with pytest.raises(Forbidden):
                devices.list_devices(s, people[who])
        for bad in ("", "bad serial", "-lead", "x" * 65, "case-attachment", "BC\u202e1"):
            with pytest.raises(InvalidSerial):
                devices.register(s, people["clerk"], bad, officer="0815", reason="r")
        with pytest.raises(InvalidRegistration):
            devices.register(s, people["clerk"], "BC-2", reason="neither")
        with pytest.raises(InvalidRegistration):
            devices.register(s, people["clerk"], "BC-2", officer="0815", pool=["4711"], reason="both")
        with pytest.raises(InvalidRegistration):
            devices.register(s, people["clerk"], "BC-2", officer="nobody", reason="unknown officer")
        with pytest.raises(InvalidRegistration):
            devices.register(s, people["clerk"], "BC-2", pool=[], reason="empty pool")
        with pytest.raises(InvalidRegistration):
            devices.register(s, people["clerk"], "BC-2", officer="0815", reason="  ")
        with pytest.raises(UnknownDevice):
            devices.retire(s, people["clerk"], "BC-NONE", reason="never seen")
    assert _actions(engine, "BC-2") == before
    with Session(engine) as s:
        device = s.get(Device, "BC-2")
        assert device is not None and device.status is DeviceStatus.UNREGISTERED

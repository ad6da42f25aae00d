"""The auto-link rule and the timeline on the corrected clock, against PostgreSQL (services, no HTTP).

Window edges are inclusive: a recording that ends exactly ``buffer`` before the record's window,
or starts exactly ``buffer`` after it, is linked; a millisecond further and it is not.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.accounts import services as accounts
from archive.accounts.models import Role, User
from archive.approvals import services as approvals
from archive.cases import services as cases
from archive.cases.models import CaseKind, CaseMedia, DocumentKind, Stage, TimelineMedia, TimelineRecord
from archive.config import Settings
from archive.db import session_scope
from archive.ingest import pipeline
from archive.media.models import ClockSource, Media, MediaState
from archive.models import Event
from archive.signing import Keyring
from archive.storage import MinioStore
from tests.case_factories import T, media_row

BUF = 300.0
MS = timedelta(milliseconds=1)


@pytest.fixture
def clerk(engine: Engine) -> User:
    with session_scope(engine) as s:
        user, _ = accounts.add_user(s, "clerk", Role.RECORDS_MANAGER)
    return user


def _case(engine: Engine, clerk: User) -> str:
    with session_scope(engine) as s:
        return cases.create_case(s, clerk, cases.CaseInput("2024-7", "Stop", CaseKind.CRIMINAL)).id


def _record(
    engine: Engine,
    clerk: User,
    case_id: str,
    start: datetime,
    end: datetime,
    officers: list[str],
    buffer_s: float = BUF,
    record_id: str | None = None,
) -> tuple[str, list[str]]:
    with session_scope(engine) as s:
        rec, linked = cases.add_record(
            s,
            clerk,
            case_id,
            cases.RecordInput(
                stage=Stage.INVESTIGATION,
                doc_kind=DocumentKind.INSPECTION_RECORD,
                author="0815",
                occurred_from=start,
                occurred_to=end,
                body="inspection of the vehicle",
                officers=officers,
            ),
            buffer_s=buffer_s,
            record_id=record_id,
        )
        return rec.record_id, linked


def test_window_edges_are_inclusive_to_the_millisecond(engine: Engine, clerk: User) -> None:
    case_id = _case(engine, clerk)
    start, end = T, T + timedelta(minutes=30)
    buf = timedelta(seconds=BUF)
    # 60 s clips: corrected end = recorded_at + 60 s.
    ends_on_edge = media_row(engine, recorded_at=start - buf - timedelta(seconds=60))
    ends_just_before = media_row(engine, recorded_at=start - buf - timedelta(seconds=60) - MS)
    starts_on_edge = media_row(engine, recorded_at=end + buf)
    starts_just_after = media_row(engine, recorded_at=end + buf + MS)
    inside = media_row(engine, recorded_at=start + timedelta(minutes=10))
    spans_whole = media_row(engine, recorded_at=start - timedelta(hours=1), duration_s=3 * 3600)
    _, linked = _record(engine, clerk, case_id, start, end, ["0815"])
    assert set(linked) == {ends_on_edge, starts_on_edge, inside, spans_whole}
    assert ends_just_before not in linked and starts_just_after not in linked


def test_clock_offset_decides_not_the_device_clock(engine: Engine, clerk: User) -> None:
    case_id = _case(engine, clerk)
    start, end = T, T + timedelta(minutes=30)
    # Device 1 h fast: its 11:20 is 10:20 true time, inside the window.
    fast_inside = media_row(
        engine, device="FAST-1", recorded_at=T + timedelta(hours=1, minutes=20), offset_s=3600
    )
    # Same device time, accurate clock: 11:20 true is far outside.
    accurate_outside = media_row(engine, device="OK-1", recorded_at=T + timedelta(hours=1, minutes=20))
    # Device 2 h slow (offset -7200): says 08:10, truly 10:10, inside.
    slow_inside = media_row(engine, device="SLOW-1", recorded_at=T - timedelta(minutes=110), offset_s=-7200)
    # Device 90 s fast, its clip ends at true start - buffer - 1 ms: outside only because of the offset.
    fast_edge = media_row(
        engine, device="FAST-2", recorded_at=T - timedelta(seconds=BUF + 60 - 90) - MS, offset_s=90
    )
    # A recorder reset to 2000-01-01, offset measured at docking: still placed right.
    reset = T + timedelta(minutes=5)
    reset_device_time = datetime(2000, 1, 1, tzinfo=reset.tzinfo)
    reset_clock = media_row(
        engine,
        device="RESET-1",
        recorded_at=reset_device_time,
        offset_s=(reset_device_time - reset).total_seconds(),
    )
    _, linked = _record(engine, clerk, case_id, start, end, ["0815"])
    assert set(linked) == {fast_inside, slow_inside, reset_clock}
    assert accurate_outside not in linked and fast_edge not in linked


def test_only_the_named_officers_and_their_devices(engine: Engine, clerk: User) -> None:
    case_id = _case(engine, clerk)
    at = T + timedelta(minutes=1)
    mine = media_row(engine, officer="0815", device="BC-1", recorded_at=at)
    other = media_row(engine, officer="4711", device="BC-2", recorded_at=at)
    # Docked under another badge from a device assigned to 0815: recorded by 0815's device.
    device_of_mine = media_row(engine, officer="9999", device="BC-3", recorded_at=at, device_owner="0815")
    quarantined = media_row(engine, recorded_at=at, state=MediaState.QUARANTINED, device="BC-1")
    no_time = media_row(engine, recorded_at=None, device="BC-1")
    _, linked = _record(engine, clerk, case_id, T, T + timedelta(minutes=5), ["0815"])
    assert set(linked) == {mine, device_of_mine}
    assert not {other, quarantined, no_time} & set(linked)
    _, none = _record(engine, clerk, case_id, T, T + timedelta(minutes=5), [])
    assert none == []


def test_buffer_is_configurable(engine: Engine, clerk: User) -> None:
    case_id = _case(engine, clerk)
    nine_min_before = media_row(engine, recorded_at=T - timedelta(minutes=9, seconds=60), duration_s=60)
    _, linked = _record(engine, clerk, case_id, T, T + timedelta(minutes=1), ["0815"], buffer_s=300)
    assert linked == []
    _, linked = _record(engine, clerk, case_id, T, T + timedelta(minutes=1), ["0815"], buffer_s=540)
    assert linked == [nine_min_before]


def test_unlinked_by_a_person_stays_unlinked_and_every_link_is_logged(engine: Engine, clerk: User) -> None:
    case_id = _case(engine, clerk)
    mid = media_row(engine, recorded_at=T)
    rid, linked = _record(engine, clerk, case_id, T, T + timedelta(minutes=5), ["0815"])
    assert linked == [mid]
    with session_scope(engine) as s:
        req = cases.unlink_media(
            s, clerk, case_id, mid, "wrong incident: camera left running", addr="10.0.0.9"
        )
        clerk2, _token = accounts.add_user(s, "clerk2", Role.RECORDS_MANAGER)
        # Issue 10, finding 4: a second person approves; only then is the link closed.
        assert cases.find_open_link(s, case_id, mid) is not None
        approvals.decide(s, clerk2, req.id or 0, approve=True, deps=approvals.Deps(addr="10.0.0.8"))
    _, again = _record(engine, clerk, case_id, T, T + timedelta(minutes=6), ["0815"], record_id=rid)
    assert again == []
    with Session(engine) as s:
        rows = s.exec(select(CaseMedia).where(CaseMedia.media_id == mid)).all()
        assert [(r.source, r.unlink_reason) for r in rows] == [
            ("auto", "wrong incident: camera left running")
        ]
        evs = s.exec(select(Event).where(Event.subject_id == mid).order_by(Event.id)).all()
        assert [e.action for e in evs] == [
            "case.link",
            "approval.request",
            "approval.approve",
            "case.unlink",
            "approval.execute",
        ]
        assert evs[1].client_addr == "10.0.0.9" and evs[1].details["reason"].startswith("wrong incident")
        assert evs[3].actor == "user:clerk" and evs[3].details["approved_by"] == "clerk2"
        assert evs[2].actor == evs[4].actor == "user:clerk2"
        assert evs[0].actor == "user:clerk" and evs[0].details["source"] == "auto"


def test_timeline_is_in_time_order_on_the_corrected_clock(engine: Engine, clerk: User) -> None:
    case_id = _case(engine, clerk)
    late_by_device = media_row(
        engine,
        device="FAST-9",
        recorded_at=T + timedelta(minutes=2, seconds=30),
        offset_s=150,
        duration_s=42.5,
    )
    early = media_row(engine, device="BC-8", recorded_at=T - timedelta(minutes=3), source=ClockSource.ASSUMED)
    _record(engine, clerk, case_id, T + timedelta(minutes=1), T + timedelta(minutes=4), ["0815"])
    with session_scope(engine) as s:
        tl = cases.timeline(s, clerk, case_id, addr="10.1.1.1")
    kinds = [(type(i).__name__, getattr(i, "id", None)) for i in tl.items]
    assert kinds == [
        ("TimelineMedia", early),
        ("TimelineMedia", late_by_device),
        ("TimelineRecord", None),
    ]
    fast = tl.items[1]
    assert isinstance(fast, TimelineMedia) and isinstance(tl.items[2], TimelineRecord)
    assert fast.start == T and fast.end == T + timedelta(seconds=42.5)
    assert fast.recorded_at_device == T + timedelta(minutes=2, seconds=30)
    assert fast.correction == "device clock 150 s fast (measured); times shown corrected"
    first = tl.items[0]
    assert isinstance(first, TimelineMedia) and "assumed" in first.correction
    with Session(engine) as s:
        ev = s.exec(select(Event).where(Event.action == "case.timeline")).one()
        assert ev.subject_id == case_id and ev.client_addr == "10.1.1.1" and ev.actor == "user:clerk"


def test_media_archived_after_the_record_is_linked_when_signed(
    engine: Engine, clerk: User, settings: Settings, store: MinioStore
) -> None:
    """Officers dock at the end of a shift, often after the record was typed: the rule applies when the
    recording is archived (the pipeline's last step), on the corrected clock, latest versions only."""
    case_id = _case(engine, clerk)
    _record(engine, clerk, case_id, T, T + timedelta(minutes=10), ["0815"])
    with session_scope(engine) as s:
        other = cases.create_case(s, clerk, cases.CaseInput("2024-8", "Other", CaseKind.CRIMINAL)).id
    # A record that named 0815 once, then was corrected to name 4711 only: 0815's media stay out.
    rid, _ = _record(engine, clerk, other, T, T + timedelta(minutes=10), ["0815"])
    _record(engine, clerk, other, T, T + timedelta(minutes=10), ["4711"], record_id=rid)
    # Device 1 h fast: its 11:05 is 10:05 on the true clock, inside the window.
    fast = media_row(
        engine,
        device="FAST-1",
        recorded_at=T + timedelta(hours=1, minutes=5),
        offset_s=3600,
        state=MediaState.DERIVED,
    )
    # Same device time on an accurate clock: 11:05, far outside.
    accurate = media_row(
        engine, device="OK-1", recorded_at=T + timedelta(hours=1, minutes=5), state=MediaState.DERIVED
    )
    ctx = pipeline.Context(
        engine=engine, store=store, keyring=Keyring(settings.resolved_key_dir()), settings=settings
    )
    for mid in (fast, accurate):
        with Session(engine) as s:
            item = s.get(Media, mid)
            assert item is not None
            sha = item.sha256
        pipeline.sign(ctx, mid, sha)
    with Session(engine) as s:
        assert {m.id: m.state for m in s.exec(select(Media))} == {fast: "ready", accurate: "ready"}
        rows = s.exec(select(CaseMedia)).all()
        assert [(r.case_id, r.media_id, r.source) for r in rows] == [(case_id, fast, "auto")]
        ev = s.exec(select(Event).where(Event.action == "case.link")).one()
        assert ev.actor == "system:worker" and ev.subject_id == fast and ev.details["case"] == case_id
    with session_scope(engine) as s:
        tl = cases.timeline(s, clerk, case_id)
    assert [getattr(i, "id", None) for i in tl.items] == [None, fast]  # record at 10:00, clip at 10:05


def test_the_recording_start_comes_from_its_metadata_when_it_has_one(engine: Engine, clerk: User) -> None:
    """A recorder writes the file's time when it closes the file, ten minutes after it started; the
    container's creation time says when recording began. The timeline and the rule use the latter."""
    case_id = _case(engine, clerk)
    ten_min = media_row(
        engine, device="FAST-3", recorded_at=T + timedelta(minutes=5, seconds=30), offset_s=30, duration_s=600
    )
    with session_scope(engine) as s:
        m = s.get(Media, ten_min)
        assert m is not None and m.probe is not None
        m.probe = {**m.probe, "creation_time": "2024-06-10T09:55:30Z"}  # device clock, 30 s fast
        s.add(m)
    _, linked = _record(engine, clerk, case_id, T, T + timedelta(minutes=1), ["0815"], buffer_s=0)
    assert linked == [ten_min]  # 09:55-10:05 true time overlaps 10:00-10:01 (the file time would not)
    with session_scope(engine) as s:
        tl = cases.timeline(s, clerk, case_id)
    item = tl.items[0]
    assert isinstance(item, TimelineMedia)
    assert (item.start, item.end) == (T - timedelta(minutes=5), T + timedelta(minutes=5))
    assert item.recorded_at_device == T - timedelta(minutes=4, seconds=30)
    assert item.device_time_source == "metadata" and "30 s fast" in item.correction

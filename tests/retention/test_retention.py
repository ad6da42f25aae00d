"""Retention: calendar-correct dates, rule precedence, S3 Object Lock enforcement, the sweep."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive.accounts.models import Device, Officer
from archive.db import session_scope
from archive.errors import StorageError
from archive.media.models import Media, MediaState
from archive.models import Event, Tombstone
from archive.signing import Keyring, Signature
from archive.storage import MinioStore
from retention import services as rs
from retention.models import RetentionStatus
from retention.policy import FlagKind, Keep, add_months, default_policy

# --- dates and rules (pure) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2025, 8, 31, 10, tzinfo=UTC), 6, datetime(2026, 2, 28, 10, tzinfo=UTC)),
        (datetime(2023, 8, 31, 10, tzinfo=UTC), 6, datetime(2024, 2, 29, 10, tzinfo=UTC)),  # leap year
        (datetime(2026, 1, 31, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2026, 3, 15, 23, 59, tzinfo=UTC), 6, datetime(2026, 9, 15, 23, 59, tzinfo=UTC)),
        (datetime(2026, 7, 31, tzinfo=UTC), 6, datetime(2027, 1, 31, tzinfo=UTC)),
    ],
)
def test_six_calendar_months(start: datetime, months: int, expected: datetime) -> None:
    assert add_months(start, months) == expected


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        add_months(datetime(2026, 1, 1), 6)  # a naive time is the point of the test


REC = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("facts", "winner", "protected"),
    [
        (rs.Facts("m", REC), "default", False),
        (rs.Facts("m", REC, flags=frozenset({FlagKind.EVIDENCE})), "evidence-flag", True),
        (rs.Facts("m", REC, flags=frozenset({FlagKind.OBSTRUCTION})), "obstruction", True),
        (rs.Facts("m", REC, flags=frozenset({FlagKind.MAJOR_INCIDENT})), "major-incident", True),
        (rs.Facts("m", REC, flags=frozenset({FlagKind.MAJOR_CASE})), "major-case", True),
        (rs.Facts("m", REC, flags=frozenset({FlagKind.IMPORTANT})), "important-mark", True),
        (rs.Facts("m", REC, flags=frozenset({FlagKind.IMPORTANT}), reviewed=True), "default", False),
        (rs.Facts("m", REC, cases=(rs.CaseFact("c", "criminal", True),)), "case-evidence", True),
        (rs.Facts("m", REC, cases=(rs.CaseFact("c", "criminal", False),)), "default", False),
        (rs.Facts("m", REC, cases=(rs.CaseFact("c", "administrative", False),)), "case-file", True),
        # Longest wins: permanent beats the case file.
        (
            rs.Facts(
                "m",
                REC,
                flags=frozenset({FlagKind.OBSTRUCTION}),
                cases=(rs.CaseFact("c", "administrative", False),),
            ),
            "obstruction",
            True,
        ),
        (rs.Facts("m", REC, legal_hold=True), "default", True),
    ],
)
def test_rules_and_the_longest_wins(facts: rs.Facts, winner: str, protected: bool) -> None:
    d = rs.classify(facts, default_policy())
    assert d.winner.rule_id == winner and d.protected is protected
    if not protected:
        assert d.delete_after == datetime(2026, 7, 10, 8, 0, tzinfo=UTC)
    explained = d.explain()
    assert explained["winner"] == winner and explained["rules"][0]["rule"] == "default"


# --- against PostgreSQL and S3 --------------------------------------------------------------


def archived(engine: Engine, store: MinioStore, recorded_at: datetime, *, offset_s: float = 0.0) -> Media:
    """An archived original with real bytes in the locked bucket (no ffmpeg needed here)."""
    data = os.urandom(2048)
    sha = hashlib.sha256(data).hexdigest()
    with session_scope(engine) as s:
        if s.get(Officer, "0815") is None:
            s.add(Officer(badge="0815"))
            s.flush()  # no ORM relationships: flush in foreign-key order by hand
        if s.get(Device, "BC-4711") is None:
            s.add(Device(serial="BC-4711", officer_badge="0815"))
            s.flush()
        m = Media(
            sha256=sha,
            archived_sha256=sha,
            size=len(data),
            file_name="x.mp4",
            officer_badge="0815",
            device_serial="BC-4711",
            recorded_at=recorded_at,
            clock_offset_s=offset_s,
            object_key="",
            state=MediaState.READY,
        )
        m.object_key = f"originals/{m.id}"
        store.put_bytes(store.originals, m.object_key, data, "video/mp4")
        s.add(m)
    return m


def classify_now(engine: Engine, store: MinioStore, media_id: str, **kw: Any) -> rs.Decision | None:
    with session_scope(engine) as s:
        return rs.recompute(s, store, s.get(Media, media_id), actor="user:rm", reason="test", **kw)  # type: ignore[arg-type]


def test_locked_original_cannot_be_deleted_before_its_date(engine: Engine, store: MinioStore) -> None:
    now = datetime.now(UTC)
    m = archived(engine, store, add_months(now, -6) + timedelta(seconds=40))
    d = classify_now(engine, store, m.id)
    assert d is not None and not d.protected and d.delete_after is not None
    lock = store.lock_state(store.originals, m.object_key)
    assert lock.retain_until is not None and abs((lock.retain_until - d.delete_after).total_seconds()) < 1
    with pytest.raises(StorageError, match="AccessDenied"):
        store.delete(store.originals, m.object_key)  # S3 itself refuses, whatever our code says
    assert store.read_bytes(store.originals, m.object_key)


def test_flag_puts_a_legal_hold_and_clearing_it_needs_a_reason(engine: Engine, store: MinioStore) -> None:
    m = archived(engine, store, datetime.now(UTC) - timedelta(days=400))
    with session_scope(engine) as s:
        d = rs.set_flag(
            s, store, m.id, FlagKind.OBSTRUCTION, actor="user:rev1", reason="officer pushed at 00:42"
        )
    assert d is not None and d.protected and d.winner.keep is Keep.PERMANENT
    assert store.lock_state(store.originals, m.object_key).legal_hold
    with session_scope(engine) as s, pytest.raises(Exception, match="reason"):
        rs.clear_flag(s, store, m.id, FlagKind.OBSTRUCTION, actor="user:rev1", reason=" ")
    with session_scope(engine) as s:
        rs.clear_flag(s, store, m.id, FlagKind.OBSTRUCTION, actor="user:rev1", reason="wrong clip")
    assert not store.lock_state(store.originals, m.object_key).legal_hold
    with Session(engine) as s:
        actions = [e.action for e in s.exec(select(Event).where(Event.subject_id == m.id).order_by(Event.id))]
    assert actions == ["retention.flag", "retention.classify", "retention.unflag", "retention.classify"]


def test_sweep_deletes_expired_keeps_protected_and_leaves_signed_tombstones(
    engine: Engine, store: MinioStore, settings: Any
) -> None:
    old = datetime.now(UTC) - timedelta(days=200)
    expired = archived(engine, store, old)
    flagged = archived(engine, store, old)
    fresh = archived(engine, store, datetime.now(UTC) - timedelta(days=10))
    # Stamped 200 days ago by a device clock running 30 days slow (offset = device - true < 0):
    # truly recorded 170 days ago, so not yet due.
    slow_clock = archived(engine, store, old, offset_s=-30 * 86400)
    assert rs.classify_pending(engine, store) == 4
    with session_scope(engine) as s:
        rs.set_flag(s, store, flagged.id, FlagKind.EVIDENCE, actor="user:rev1", reason="exhibit 3")
    keyring = Keyring(settings.resolved_key_dir())

    dry = rs.sweep(engine, store, keyring, dry_run=True)
    assert [e["media_id"] for e in dry.deleted] == [expired.id]
    assert store.exists(store.originals, expired.object_key)  # a dry run deletes nothing

    result = rs.sweep(engine, store, keyring)
    assert [e["media_id"] for e in result.deleted] == [expired.id]
    assert store.versions(store.originals, expired.object_key) == []
    for m in (flagged, fresh, slow_clock):
        assert store.exists(store.originals, m.object_key)
    with Session(engine) as s:
        stone = s.exec(select(Tombstone)).one()
        assert s.get(Media, expired.id).state is MediaState.DELETED  # type: ignore[union-attr]
        ev = s.exec(select(Event).where(Event.action == "retention.delete")).one()
    assert stone.sha256 == expired.sha256 and stone.body["rule"] == "default"
    keyring.verify(stone.body, Signature(stone.key_id, stone.signature))
    assert ev.details["sha256"] == expired.sha256
    # Idempotent: the next sweep finds nothing more to delete.
    assert rs.sweep(engine, store, keyring).deleted == []


def test_sweep_rechecks_protection_inside_the_lock(engine: Engine, store: MinioStore, settings: Any) -> None:
    m = archived(engine, store, datetime.now(UTC) - timedelta(days=200))
    rs.classify_pending(engine, store)
    with session_scope(engine) as s:
        # A hold recorded without recomputing (as if it landed between classification and sweep).
        from retention.models import LegalHold

        s.add(LegalHold(media_id=m.id, reason="court order 12/2026", placed_by="user:rm"))
    result = rs.sweep(engine, store, Keyring(settings.resolved_key_dir()))
    assert result.deleted == [] and result.kept[0]["why"] == "protected on re-check"
    assert store.exists(store.originals, m.object_key)


def test_upcoming_report(engine: Engine, store: MinioStore) -> None:
    now = datetime.now(UTC)
    soon = archived(engine, store, add_months(now, -6) + timedelta(days=10))
    archived(engine, store, add_months(now, -6) + timedelta(days=60))
    rs.classify_pending(engine, store)
    with Session(engine) as s:
        due = rs.upcoming(s, now, 30)
    assert [r.media_id for r in due] == [soon.id]


# --- property: nothing protected is ever deleted; everything expired and unprotected goes ----

OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("flag"), st.integers(0, 3), st.sampled_from([FlagKind.EVIDENCE, FlagKind.OBSTRUCTION])
        ),
        st.tuples(
            st.just("unflag"), st.integers(0, 3), st.sampled_from([FlagKind.EVIDENCE, FlagKind.OBSTRUCTION])
        ),
        st.tuples(st.just("hold"), st.integers(0, 3), st.none()),
        st.tuples(st.just("release"), st.integers(0, 3), st.none()),
        st.tuples(st.just("policy"), st.integers(6, 12), st.none()),  # never below six months
        st.tuples(st.just("clock"), st.integers(0, 400), st.none()),
        st.tuples(st.just("sweep"), st.just(0), st.none()),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, ages=st.lists(st.integers(0, 400), min_size=4, max_size=4))
def test_property_protected_never_deleted_expired_always_deleted(
    engine: Engine, store: MinioStore, settings: Any, ops: list[tuple[str, int, Any]], ages: list[int]
) -> None:
    real_now = datetime.now(UTC)
    # Every date in this world (recordings, clock, expiry at up to 12 months) lies in the real
    # past, so S3's real-time locks never disagree with the moved clock.
    clock_at = real_now - timedelta(days=800)
    items = [archived(engine, store, clock_at - timedelta(days=a)) for a in ages]  # some due, some not
    keyring = Keyring(settings.resolved_key_dir())
    rs.classify_pending(engine, store)

    def at() -> datetime:
        return clock_at

    for op, n, kind in [*ops, ("sweep", 0, None)]:
        target = items[n % len(items)]
        with session_scope(engine) as s:
            media = s.get(Media, target.id)
            assert media is not None
            if media.state is MediaState.DELETED and op in {"flag", "unflag", "hold", "release"}:
                continue
            if op == "flag":
                rs.set_flag(s, store, target.id, kind, actor="user:rev", reason="seen", clock=at)
            elif op == "unflag":
                try:
                    rs.clear_flag(s, store, target.id, kind, actor="user:rev", reason="mistake", clock=at)
                except Exception:  # noqa: BLE001 - no such flag: a no-op in this random walk
                    s.rollback()
            elif op == "hold":
                rs.place_hold(s, store, target.id, actor="user:rm", reason="order", clock=at)
            elif op == "release":
                from retention.models import LegalHold

                hold = s.exec(
                    select(LegalHold).where(
                        LegalHold.media_id == target.id, col(LegalHold.released_at).is_(None)
                    )
                ).first()
                if hold is not None:
                    rs.release_hold(s, store, hold.id or 0, actor="user:rm", reason="lifted", clock=at)
            elif op == "policy":
                rs.set_policy(
                    s, {**default_policy().to_json(), "default_months": n}, actor="user:rm", reason="edit"
                )
            elif op == "clock":
                clock_at = min(real_now - timedelta(days=400), clock_at + timedelta(days=n))
        if op == "sweep" or op == "policy":
            # Oracle: what the rules say about each item right now, from the facts.
            with Session(engine) as s:
                policy = rs.current_policy(s)
                expect = {}
                for m in items:
                    row = s.get(Media, m.id)
                    assert row is not None
                    if row.state is MediaState.DELETED:
                        continue
                    d = rs.classify(rs.gather_facts(s, row), policy)
                    expect[m.id] = d.delete_after is not None and d.delete_after <= clock_at
            # A policy edit changes facts for everyone: reclassify, as the policy API does.
            with session_scope(engine) as s:
                for m in items:
                    row = s.get(Media, m.id)
                    if row is not None and row.state is not MediaState.DELETED:
                        rs.recompute(s, store, row, actor="user:rm", reason="policy", clock=at)
            if op == "sweep":
                swept = {e["media_id"] for e in rs.sweep(engine, store, keyring, clock=at).deleted}
                # Examples share one database: judge this example's items only.
                deleted = swept & {m.id for m in items}
                assert deleted == {mid for mid, due in expect.items() if due}
                with Session(engine) as s:
                    for mid, due in expect.items():
                        st_row = s.get(RetentionStatus, mid)
                        assert st_row is not None and (st_row.deleted_at is not None) == due
                        assert store.exists(store.originals, f"originals/{mid}") != due


class DiesMidSweep:
    """The real S3 store, except that the process 'dies' (raises) right after the third original
    is really deleted, before the database commits: fault injection around the real service."""

    def __init__(self, real: MinioStore) -> None:
        self._real = real
        self.deletes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def delete(self, bucket: str, key: str) -> None:
        self._real.delete(bucket, key)
        if bucket == self._real.originals:
            self.deletes += 1
            if self.deletes == 3:
                raise KeyboardInterrupt("killed mid-sweep")


def test_sweep_killed_half_way_finishes_on_the_next_run(
    engine: Engine, store: MinioStore, settings: Any
) -> None:
    old = datetime.now(UTC) - timedelta(days=300)
    due = [archived(engine, store, old) for _ in range(5)]
    kept = archived(engine, store, old)
    rs.classify_pending(engine, store)
    with session_scope(engine) as s:
        rs.set_flag(
            s, store, kept.id, FlagKind.MAJOR_INCIDENT, actor="user:rev", reason="mass incident 3 May"
        )
    keyring = Keyring(settings.resolved_key_dir())
    with pytest.raises(KeyboardInterrupt):
        rs.sweep(engine, store=DiesMidSweep(store), keyring=keyring, batch=2)  # type: ignore[arg-type]
    with Session(engine) as s:
        assert len(s.exec(select(Tombstone)).all()) == 2  # the batch that died rolled back
    result = rs.sweep(engine, store, keyring, batch=2)
    assert len(result.deleted) == 3
    with Session(engine) as s:
        stones = s.exec(select(Tombstone)).all()
    assert sorted(t.media_id for t in stones) == sorted(m.id for m in due)  # one each, none twice
    for m in due:
        assert store.versions(store.originals, m.object_key) == []
    assert store.exists(store.originals, kept.object_key)

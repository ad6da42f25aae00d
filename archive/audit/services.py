"""Verification for auditors and the scheduled fixity sweep.

The threats: bytes in S3 silently corrupted or replaced (bit rot, a compromised storage account),
database rows edited behind the application's back (hand-run SQL), manifests swapped for forged
ones, custody entries edited or removed (a superuser can drop the append-only triggers). Each
check compares two records that an attacker would have to change together, and the anchors are
things the attacker cannot forge: our SHA-256 of the bytes, Ed25519 signatures, and the signed
checkpoints of the Merkle log. Every discrepancy is named; nothing stops at the first.

Longer than 600 lines on purpose: it is one chain of checks (an item's bytes, rows and signatures,
its state against the custody log, its tombstone, then the log against its signed checkpoints) that
an auditor reads top to bottom to know what "verified" means; the fixity sweep reuses it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, actor, authorize
from archive.accounts.models import User
from archive.audit.models import Problem, Report, VerificationFailed
from archive.clock import Clock, as_utc, utcnow
from archive.db import session_scope
from archive.errors import CustodyError, ObjectMissing, SignatureInvalid
from archive.hashing import Digest
from archive.i18n import _
from archive.ledger import merkle
from archive.ledger import services as ledger
from archive.ledger.models import Checkpoint, LogLeaf
from archive.ledger.publish import verify_published
from archive.media.models import (
    ORIGINAL_AS_PROXY,
    Derivative,
    Manifest,
    Media,
    MediaState,
    derivative_bucket,
)
from archive.models import Event, Outcome, Tombstone
from archive.signing import Keyring, Signature, canonical_json
from archive.storage import ObjectStore

log = logging.getLogger("custody.audit")
ACTOR = "system:audit"
# States whose original is archived under its own key (duplicates were removed, quarantined never counted).
ARCHIVED = (
    MediaState.VERIFIED,
    MediaState.PROBED,
    MediaState.DERIVED,
    MediaState.READY,
    MediaState.UNPLAYABLE,
)
SIGNED = (MediaState.READY, MediaState.UNPLAYABLE)


class Throttle:
    """Caps the bytes per second a sweep reads, so fixity never starves ingest or review of S3."""

    def __init__(self, rate_bytes_per_s: float | None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate_bytes_per_s
        self.sleep = sleep
        self.start = time.monotonic()
        self.done = 0

    def consume(self, n: int) -> None:
        if not self.rate:
            return
        self.done += n
        ahead = self.done / self.rate - (time.monotonic() - self.start)
        if ahead > 0:
            self.sleep(ahead)


def hash_object(store: ObjectStore, bucket: str, key: str, throttle: Throttle | None = None) -> Digest:
    h = hashlib.sha256()
    n = 0
    with store.open_stream(bucket, key) as chunks:
        for chunk in chunks:
            h.update(chunk)
            n += len(chunk)
            if throttle:
                throttle.consume(len(chunk))
    return Digest(h.hexdigest(), n)


# Entries that move a media item from one state to the next (pipeline: details.to; retention: deleted).
STATE_ACTIONS = (
    "media.receive",
    "media.verify",
    "media.probe",
    "media.derive",
    "media.sign",
    "retention.delete",
)


@dataclass
class LoggedFacts:
    """What the custody log says about one media item: the anchor a database edit cannot move."""

    sha256: list[str] = field(default_factory=list)  # from media.verify entries
    manifest_sha256: list[str] = field(default_factory=list)  # from media.sign entries
    state: str | None = None  # the state the last state-changing entry moved it to
    tombstone_signature: str | None = None  # from the retention.delete entry


@dataclass
class ItemSnapshot:
    """Everything about one media item, read in one short transaction, checked outside it."""

    media: Media
    derivatives: list[Derivative]
    manifest: Manifest | None
    logged: LoggedFacts = field(default_factory=LoggedFacts)
    tombstone: Tombstone | None = None

    @property
    def logged_sha256(self) -> list[str]:
        return self.logged.sha256

    @property
    def logged_manifest_sha256(self) -> list[str]:
        return self.logged.manifest_sha256


def logged_facts(session: Session, media_id: str) -> LoggedFacts:
    facts = LoggedFacts()
    q = (
        select(Event)
        .where(
            Event.subject_type == "media",
            Event.subject_id == media_id,
            col(Event.action).in_(STATE_ACTIONS),
        )
        .order_by(col(Event.id))
    )
    for ev in session.exec(q):
        if ev.action == "media.receive":
            facts.state = MediaState.RECEIVED.value
        elif ev.action == "retention.delete":
            facts.state = MediaState.DELETED.value
            facts.tombstone_signature = ev.details.get("tombstone_signature")
        elif ev.details.get("to"):
            facts.state = str(ev.details["to"])
        if (
            ev.action == "media.verify"
            and ev.details.get("to") == MediaState.VERIFIED
            and ev.details.get("sha256")
        ):
            facts.sha256.append(str(ev.details["sha256"]))
        if ev.action == "media.sign" and ev.details.get("manifest_sha256"):
            facts.manifest_sha256.append(str(ev.details["manifest_sha256"]))
    return facts


def load_item(session: Session, media_id: str) -> ItemSnapshot | None:
    item = session.get(Media, media_id)
    if item is None:
        return None
    ders = list(session.exec(select(Derivative).where(Derivative.media_id == media_id)))
    manifest = session.exec(
        select(Manifest).where(Manifest.media_id == media_id).order_by(col(Manifest.version).desc())
    ).first()
    stone = session.exec(select(Tombstone).where(Tombstone.media_id == media_id)).first()
    return ItemSnapshot(item, ders, manifest, logged_facts(session, media_id), stone)


def _check_state(snap: ItemSnapshot, keyring: Keyring, report: Report) -> bool:
    """The row's state against the log, and a deletion against its signed tombstone. Returns
    whether the item's bytes should still be in storage (and so be re-hashed)."""
    m, logged, subject = snap.media, snap.logged, f"media {snap.media.id}"
    if logged.state is not None and logged.state != m.state.value:
        report.add(
            Problem.ROW_CHANGED,
            subject,
            f"state is {m.state.value!r} in the database but the custody log last moved it to "
            f"{logged.state!r}",
        )
    row_deleted = m.state is MediaState.DELETED
    log_deleted = logged.state == MediaState.DELETED.value
    if row_deleted or log_deleted:
        _check_tombstone(snap, keyring, report)
    if log_deleted or (logged.state is None and row_deleted):
        return False  # retention removed the bytes
    # A row moved to "deleted" or "quarantined" by hand does not hide its bytes from the check.
    return m.state in ARCHIVED or logged.state in {s.value for s in ARCHIVED}


def _check_tombstone(snap: ItemSnapshot, keyring: Keyring, report: Report) -> None:
    m, logged, subject = snap.media, snap.logged, f"media {snap.media.id}"
    stone = snap.tombstone
    if stone is None:
        report.add(Problem.TOMBSTONE_MISSING, subject, "deleted, but no signed tombstone is stored")
        return
    report.signatures_checked += 1
    try:
        keyring.verify(stone.body, Signature(stone.key_id, stone.signature))
    except SignatureInvalid as exc:
        report.add(Problem.TOMBSTONE_INVALID, subject, f"tombstone: {exc}")
        return
    if stone.body.get("media_id") != m.id or stone.body.get("sha256") != stone.sha256:
        report.add(Problem.TOMBSTONE_INVALID, subject, "the tombstone's row differs from its signed body")
    if logged.tombstone_signature and logged.tombstone_signature != stone.signature:
        report.add(
            Problem.TOMBSTONE_INVALID,
            subject,
            "the stored tombstone is not the one the custody log recorded at deletion (replaced)",
        )
    if logged.sha256 and stone.body.get("sha256") not in logged.sha256:
        report.add(
            Problem.ROW_CHANGED,
            subject,
            f"the tombstone names sha256 {stone.body.get('sha256')} but the custody log recorded "
            f"{logged.sha256[0]} at verification",
        )


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def _row_facts(m: Media) -> dict[str, Any]:
    """The media row's facts, in the manifest's terms, for a field-by-field comparison."""
    return {
        "original.sha256": m.archived_sha256,
        "original.size": m.size,
        "original.content_type": m.content_type,
        "original.file_name": m.file_name,
        "original.source_path": m.source_path,
        "officer": m.officer_badge,
        "device": m.device_serial,
        "recorded_at_device_clock": _iso(m.recorded_at),
        "received_at": _iso(m.received_at),
        "clock.offset_s": m.clock_offset_s,
        "clock.source": m.clock_source.value,
    }


def _manifest_facts(body: dict[str, Any]) -> dict[str, Any]:
    o = body.get("original") or {}
    c = body.get("clock") or {}
    return {
        "original.sha256": o.get("sha256"),
        "original.size": o.get("size"),
        "original.content_type": o.get("content_type"),
        "original.file_name": o.get("file_name"),
        "original.source_path": o.get("source_path"),
        "officer": body.get("officer"),
        "device": body.get("device"),
        "recorded_at_device_clock": body.get("recorded_at_device_clock"),
        "received_at": body.get("received_at"),
        "clock.offset_s": c.get("offset_s"),
        "clock.source": c.get("source"),
    }


def check_item(
    snap: ItemSnapshot, store: ObjectStore, keyring: Keyring, report: Report, throttle: Throttle | None = None
) -> None:
    m = snap.media
    subject = f"media {m.id}"
    report.media_checked += 1
    if not _check_state(snap, keyring, report):
        return  # deleted by retention (tombstone checked) or never archived: no bytes to re-hash
    # 1. The signed manifest: is it ours, unaltered, and the one the log says was signed?
    signed: dict[str, Any] | None = None
    if snap.manifest is None:
        if m.state in SIGNED:
            report.add(Problem.MANIFEST_MISSING, subject, f"state {m.state} but no signed manifest is stored")
    else:
        mf = snap.manifest
        report.signatures_checked += 1
        try:
            keyring.verify(mf.body, Signature(mf.key_id, mf.signature))
            if mf.body.get("key_id") != mf.key_id:
                raise SignatureInvalid(
                    _("manifest names key {get} but row says {key_id}").format(
                        get=mf.body.get("key_id"), key_id=mf.key_id
                    )
                )
            signed = mf.body
        except SignatureInvalid as exc:
            report.add(Problem.MANIFEST_SIGNATURE_INVALID, subject, str(exc))
        digest = hashlib.sha256(canonical_json(mf.body)).hexdigest()
        if snap.logged_manifest_sha256 and digest not in snap.logged_manifest_sha256:
            report.add(
                Problem.MANIFEST_REPLACED,
                subject,
                f"stored manifest has digest {digest} but the custody log recorded "
                f"{', '.join(snap.logged_manifest_sha256)} when it was signed",
            )
        if signed is not None and signed.get("media_id") != m.id:
            report.add(
                Problem.MANIFEST_REPLACED, subject, f"the manifest is for media {signed.get('media_id')}"
            )
            signed = None
    # 2. The database row against the signature and the log.
    if signed is not None:
        want = _manifest_facts(signed)
        for name, value in _row_facts(m).items():
            if want[name] != value:
                report.add(
                    Problem.ROW_CHANGED,
                    subject,
                    f"{name} is {value!r} in the database but {want[name]!r} in the signed manifest",
                )
    if snap.logged_sha256 and m.archived_sha256 not in snap.logged_sha256:
        report.add(
            Problem.ROW_CHANGED,
            subject,
            f"archived_sha256 is {m.archived_sha256} but the custody log recorded "
            f"{snap.logged_sha256[0]} at verification",
        )
    # 3. The bytes, against the signed digest where there is one (the row may be the thing that changed).
    ref_sha: str | None = (signed or {}).get("original", {}).get("sha256")
    if ref_sha is None:
        ref_sha = snap.logged_sha256[0] if snap.logged_sha256 else m.archived_sha256
    ref_size = (signed or {}).get("original", {}).get("size", m.size)
    _check_object(
        store, store.originals, m.object_key, ref_sha, ref_size, f"{subject} original", report, throttle
    )
    signed_ders = {(d["kind"], d["profile"]): d for d in (signed or {}).get("derivatives", [])}
    rows = {(d.kind.value, d.profile): d for d in snap.derivatives}
    for key, sd in signed_ders.items():
        row = rows.get(key)
        if row is None:
            report.add(
                Problem.ROW_CHANGED, subject, f"derivative {key[0]} {key[1]} is signed but its row is gone"
            )
        elif (row.sha256, row.size) != (sd["sha256"], sd["size"]):
            report.add(
                Problem.ROW_CHANGED,
                subject,
                f"derivative {key[0]} is sha256 {row.sha256} ({row.size} bytes) in the database but "
                f"{sd['sha256']} ({sd['size']} bytes) in the signed manifest",
            )
    for key, row in rows.items():
        if signed is not None and key not in signed_ders:
            report.add(
                Problem.ROW_CHANGED,
                subject,
                f"derivative {key[0]} {key[1]} has a row but is not in the signed manifest",
            )
        ref = signed_ders.get(key) or {"sha256": row.sha256, "size": row.size}
        if row.method == ORIGINAL_AS_PROXY:
            # The original serves as its proxy: its bytes were just checked as the original, and
            # they must be the ones the manifest names for the proxy.
            if ref["sha256"] != m.archived_sha256:
                report.add(
                    Problem.ROW_CHANGED,
                    subject,
                    f"derivative {key[0]} is the original, but names sha256 {ref['sha256']}",
                )
            continue
        _check_object(
            store,
            derivative_bucket(row, store.originals, store.derived),
            row.object_key,
            ref["sha256"],
            ref["size"],
            f"{subject} {row.kind.value}",
            report,
            throttle,
        )


def _check_object(
    store: ObjectStore,
    bucket: str,
    key: str,
    sha256: str | None,
    size: int,
    what: str,
    report: Report,
    throttle: Throttle | None,
) -> None:
    try:
        got = hash_object(store, bucket, key, throttle)
    except ObjectMissing:
        report.add(Problem.OBJECT_MISSING, what, "the object is not in storage")
        return
    report.objects_hashed += 1
    report.bytes_hashed += got.size
    if (got.hex, got.size) != (sha256, size):
        report.add(
            Problem.BYTES_CHANGED,
            what,
            f"storage holds sha256 {got.hex} ({got.size} bytes); "
            f"the signed record says {sha256} ({size} bytes)",
        )


def archived_media_ids(session: Session) -> list[str]:
    """Every item the database says is archived or deleted, and every item the custody log says
    reached ``verified``: a row deleted or moved to another state by hand is still checked."""
    rows = list(
        session.exec(
            select(Media.id)
            .where(col(Media.state).in_((*ARCHIVED, MediaState.DELETED)))
            .order_by(col(Media.received_at))
        )
    )
    logged = session.exec(
        select(Event.subject_id)
        .where(Event.action == "media.verify", Event.subject_type == "media")
        .distinct()
        .order_by(col(Event.subject_id))
    )
    return list(dict.fromkeys([*rows, *logged]))


def verify_media(
    engine: Engine,
    store: ObjectStore,
    keyring: Keyring,
    ids: Iterable[str],
    report: Report,
    throttle: Throttle | None = None,
) -> None:
    if engine.dialect.name == "postgresql":
        # Row and log entries from one snapshot: a pipeline step committing between the two reads
        # must not look like a row that disagrees with the log.
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    for media_id in ids:
        with Session(engine, expire_on_commit=False) as session:
            snap = load_item(session, media_id)
            facts = logged_facts(session, media_id) if snap is None else None
        if snap is not None:  # long hashing happens with no transaction open
            check_item(snap, store, keyring, report, throttle)
        elif facts is not None and facts.state is not None:
            report.media_checked += 1
            report.add(
                Problem.ROW_CHANGED,
                f"media {media_id}",
                f"the media row was deleted; the custody log last moved it to {facts.state!r}"
                + (f" with sha256 {facts.sha256[0]}" if facts.sha256 else ""),
            )


def verify_log(session: Session, keyring: Keyring, report: Report) -> None:
    """Recompute every leaf from its event row and the tree root at every signed checkpoint,
    in one pass with O(log n) memory (leaves are read a batch at a time)."""
    checkpoints = list(
        session.exec(select(Checkpoint).order_by(col(Checkpoint.tree_size), col(Checkpoint.id)))
    )
    keys = keyring.public_keys()
    valid: dict[int, list[Checkpoint]] = {}
    for cp in checkpoints:
        report.checkpoints_checked += 1
        try:
            ledger.verify_checkpoint(cp, keys, keyring)
            valid.setdefault(cp.tree_size, []).append(cp)
        except CustodyError as exc:
            report.add(Problem.CHECKPOINT_INVALID, f"checkpoint {cp.id}", str(exc))
    stream = merkle.StreamingRoot()
    expected = 0

    def compare_at(size: int) -> None:
        root = stream.root().hex()
        for cp in valid.get(size, []):
            if cp.root_hash != root:
                report.add(
                    Problem.LOG_ENTRY_CHANGED,
                    f"checkpoint {cp.id}",
                    f"the log's first {size} entries now hash to root {root}, not the signed {cp.root_hash}: "
                    "an entry before that point was changed or removed",
                )

    compare_at(0)
    batch: list[LogLeaf] = []

    def flush() -> None:
        nonlocal expected
        rows = {
            e.id: e
            for e in session.exec(select(Event).where(col(Event.id).in_([leaf.event_id for leaf in batch])))
        }
        for leaf in batch:
            if leaf.idx != expected:
                report.add(
                    Problem.LOG_ENTRY_REMOVED,
                    f"log leaves {expected}..{leaf.idx - 1}",
                    "leaf rows are missing from the log",
                )
                expected = (
                    leaf.idx
                )  # the stream is no longer the signed tree: checkpoints after this will differ
            ev = rows.get(leaf.event_id)
            report.log_entries_checked += 1
            if ev is None:
                report.add(
                    Problem.LOG_ENTRY_REMOVED,
                    f"event {leaf.event_id}",
                    f"log leaf {leaf.idx} records it but the event row was deleted",
                )
                h = bytes.fromhex(leaf.leaf_hash)
            else:
                h = ledger.event_leaf_hash(ev)
                if h.hex() != leaf.leaf_hash:
                    report.add(
                        Problem.LOG_ENTRY_CHANGED,
                        f"event {ev.id}",
                        f"the row no longer matches log leaf {leaf.idx} (was {ev.action} by {ev.actor} "
                        f"on {ev.subject_type} {ev.subject_id} as it reads now)",
                    )
            stream.add(h)
            expected += 1
            compare_at(stream.size)
        batch.clear()

    for leaf in ledger.iter_leaves(session):
        batch.append(leaf)
        if len(batch) >= 2000:
            flush()
    flush()
    for size, cps in valid.items():
        if size > stream.size:
            for cp in cps:
                report.add(
                    Problem.LOG_ENTRY_REMOVED,
                    f"checkpoint {cp.id}",
                    f"signed a log of {size} entries but only {stream.size} remain",
                )
    sequenced = select(LogLeaf.event_id).where(LogLeaf.event_id == Event.id)
    report.unsequenced_events = int(
        session.exec(select(func.count()).select_from(Event).where(~sequenced.exists())).one()
    )


def verify_all(engine: Engine, store: ObjectStore, keyring: Keyring, *, clock: Clock = utcnow) -> Report:
    """Everything: every archived item's bytes, rows and signatures, then the whole log."""
    report = Report(started_at=clock())
    with Session(engine) as session:
        ids = archived_media_ids(session)
    verify_media(engine, store, keyring, ids, report)
    with Session(engine) as session:
        verify_log(session, keyring, report)
        # A database restored to an earlier point passes the checks above; not this one.
        verify_published(session, store, keyring, report)
    report.finished_at = clock()
    return report


def record_report(
    session: Session,
    report: Report,
    *,
    actor: str,
    action: str = "audit.verify",
    subject: tuple[str, str] = ("archive", "all"),
    client_addr: str = "",
) -> Event:
    """The verification itself goes into the custody log (first 100 discrepancies in full)."""
    if not report.ok:
        log.error(
            "verification found %d discrepancies: %s", len(report.discrepancies), report.discrepancies[0]
        )
    return events.record(
        session,
        actor=actor,
        action=action,
        subject_type=subject[0],
        subject_id=subject[1],
        outcome=Outcome.OK if report.ok else Outcome.FAILED,
        client_addr=client_addr,
        details=report.to_json(limit=100),
    )


def verify_or_raise(engine: Engine, store: ObjectStore, keyring: Keyring) -> Report:
    report = verify_all(engine, store, keyring)
    if not report.ok:
        raise VerificationFailed(report)
    return report


# Fixity sweep -----------------------------------------------------------------------------------


def due_for_fixity(session: Session, limit: int) -> list[str]:
    """The archived items whose last fixity check is oldest (never checked first)."""
    last = (
        select(Event.subject_id, func.max(Event.at).label("last"))
        .where(Event.action == "media.fixity", Event.subject_type == "media")
        .group_by(col(Event.subject_id))
        .subquery()
    )
    q = (
        select(Media.id)
        .outerjoin(last, last.c.subject_id == Media.id)
        .where(col(Media.state).in_(ARCHIVED))
        .order_by(last.c.last.asc().nulls_first(), col(Media.received_at))
        .limit(limit)
    )
    return list(session.exec(q))


def fixity_slice_size(total: int, interval_s: float, cycle_s: float) -> int:
    """How many items one run must check so that every item is checked once per cycle."""
    if total == 0:
        return 0
    return max(1, math.ceil(total * interval_s / cycle_s))


def fixity_sweep(
    engine: Engine,
    store: ObjectStore,
    keyring: Keyring,
    *,
    interval_s: float,
    cycle_s: float,
    rate_bytes_per_s: float | None,
    clock: Clock = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """One slice of the fixity cycle: re-verify the least recently checked items at a bounded rate,
    record one ``media.fixity`` entry per item, then check the whole log (cheap) and record that."""
    summary = Report(started_at=clock())
    with Session(engine) as session:
        total = int(
            session.exec(select(func.count()).select_from(Media).where(col(Media.state).in_(ARCHIVED))).one()
        )
        ids = due_for_fixity(session, fixity_slice_size(total, interval_s, cycle_s))
    throttle = Throttle(rate_bytes_per_s, sleep)
    for media_id in ids:
        one = Report(started_at=clock())
        verify_media(engine, store, keyring, [media_id], one, throttle)
        one.finished_at = clock()
        with Session(engine) as session:
            record_report(session, one, actor=ACTOR, action="media.fixity", subject=("media", media_id))
            session.commit()
        summary.media_checked += one.media_checked
        summary.objects_hashed += one.objects_hashed
        summary.bytes_hashed += one.bytes_hashed
        summary.signatures_checked += one.signatures_checked
        summary.discrepancies.extend(one.discrepancies)
    with Session(engine) as session:
        verify_log(session, keyring, summary)
    summary.finished_at = clock()
    with Session(engine) as session:
        record_report(session, summary, actor=ACTOR, action="audit.fixity")
        session.commit()
    return summary


def last_reports(session: Session, limit: int = 10) -> list[Event]:
    q = (
        select(Event)
        .where(col(Event.action).in_(["audit.verify", "audit.fixity"]))
        .order_by(col(Event.id).desc())
        .limit(limit)
    )
    return list(session.exec(q))


def verify_for(
    engine: Engine, store: ObjectStore, keyring: Keyring, user: User, *, client_addr: str = ""
) -> Report:
    """Run the full verification now for an auditor, and record it in the custody log."""
    authorize(user, Permission.AUDIT, "do this")
    report = verify_all(engine, store, keyring)
    with session_scope(engine) as session:
        record_report(session, report, actor=actor(user), client_addr=client_addr)
    return report


def reports_for(session: Session, user: User, limit: int = 10) -> list[dict[str, Any]]:
    """The latest verification and fixity-sweep results, as recorded in the custody log."""
    authorize(user, Permission.AUDIT, "do this")
    return [
        {"event_id": e.id, "at": e.at.isoformat(), "action": e.action, "actor": e.actor, **e.details}
        for e in last_reports(session, limit)
    ]

"""Checkpoints published outside the database, so a database restored to an earlier point (a backup,
a rollback by someone with database access) can never pass verification silently.

After a checkpoint is committed, ``publish`` writes to the originals bucket (versioned, Object Lock,
replicated with the evidence; never part of a database backup):

- ``ledger/segments/<start>-<end>.jsonl``: the log entries ``start..end-1`` (index, leaf hash, the
  event's facts as hashed), one JSON object a line;
- ``ledger/checkpoints/<tree size>.json``: the signed checkpoint (its body and signature).

Segments are not signed on their own: ``verify_published`` recomputes the Merkle root of the published
leaves and accepts them only if it equals the signed root, so the entries it names as missing from the
database are the ones the checkpoint signed. Publishing is idempotent (what is already there is not
written again) and runs after commit: a checkpoint rolled back with its transaction is never published.

Both are written under COMPLIANCE retention (Object Lock) for ``Settings.ledger_lock_years``, set in the
same request: no version of a published checkpoint or segment can be deleted or overwritten before then,
whoever holds the S3 keys. Objects published before this lock existed get it at the next publish;
``verify_published`` names any that lacks it (``published object not locked``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from archive import localtime
from archive.audit.models import Problem, Report
from archive.clock import Clock, utcnow
from archive.config import get_settings
from archive.errors import CustodyError, ObjectMissing
from archive.ledger import merkle
from archive.ledger import services as ledger
from archive.ledger.models import Checkpoint, LogLeaf
from archive.models import Event
from archive.signing import Keyring, Signature, canonical_json
from archive.storage import ObjectStore

PREFIX = "ledger/"
CHECKPOINTS = PREFIX + "checkpoints/"
SEGMENTS = PREFIX + "segments/"
NAMED_MAX = 1000  # missing entries named one by one in a report; the rest are counted


def checkpoint_key(size: int) -> str:
    return f"{CHECKPOINTS}{size:015d}.json"


def segment_key(start: int, end: int) -> str:
    return f"{SEGMENTS}{start:015d}-{end:015d}.jsonl"


@dataclass(frozen=True)
class Published:
    tree_size: int
    root_hash: str
    signed_at: str
    key_id: str
    signature: str
    body: dict[str, Any]


def published_sizes(store: ObjectStore) -> list[int]:
    sizes = []
    for key in store.list_keys(store.originals, CHECKPOINTS):
        name = key.removeprefix(CHECKPOINTS).removesuffix(".json")
        if name.isdigit():
            sizes.append(int(name))
    return sorted(sizes)


def segments(store: ObjectStore) -> list[tuple[int, int]]:
    out = []
    for key in store.list_keys(store.originals, SEGMENTS):
        a, _, b = key.removeprefix(SEGMENTS).removesuffix(".jsonl").partition("-")
        if a.isdigit() and b.isdigit():
            out.append((int(a), int(b)))
    return sorted(out)


def read_checkpoint(store: ObjectStore, size: int) -> Published:
    doc = json.loads(store.read_bytes(store.originals, checkpoint_key(size)))
    body = doc["body"]
    return Published(
        body["tree_size"], body["root_hash"], body["timestamp"], doc["key_id"], doc["signature"], body
    )


def published_keys(store: ObjectStore, sizes: list[int] | None = None) -> list[str]:
    """Every published checkpoint and segment, as object keys (``sizes``: the checkpoints, when the
    caller has listed them already)."""
    checkpoints = [checkpoint_key(n) for n in (published_sizes(store) if sizes is None else sizes)]
    return checkpoints + [segment_key(a, b) for a, b in segments(store)]


def publish(
    session: Session, store: ObjectStore, *, lock_years: int | None = None, clock: Clock = utcnow
) -> int:
    """Publish every committed checkpoint larger than the largest published one, with the log
    segment it adds, each locked until ``lock_years`` from now (default: the setting). Returns the tree
    size now published (0: nothing yet)."""
    years = get_settings().ledger_lock_years if lock_years is None else lock_years
    until = clock() + timedelta(days=366 * years)
    sizes = published_sizes(store)
    done = sizes[-1] if sizes else 0
    if sizes and store.lock_state(store.originals, checkpoint_key(done)).retain_until is None:
        _lock_published(store, until)  # published before checkpoints were locked: once
    rows = list(
        session.exec(
            select(Checkpoint).where(Checkpoint.tree_size > done).order_by(col(Checkpoint.tree_size))
        )
    )
    for cp in rows:
        if cp.tree_size <= done:
            continue  # two checkpoints of one size (an export's and the schedule's)
        lines = []
        for leaf, ev in session.exec(
            select(LogLeaf, Event)
            .join(Event, col(Event.id) == col(LogLeaf.event_id))
            .where(LogLeaf.idx >= done, LogLeaf.idx < cp.tree_size)
            .order_by(col(LogLeaf.idx))
        ):
            doc = {"idx": leaf.idx, "leaf_hash": leaf.leaf_hash, "leaf": ledger.leaf_document(ev)}
            lines.append(json.dumps(doc, sort_keys=True, separators=(",", ":")))
        if len(lines) != cp.tree_size - done:
            raise ledger.LogCorrupt(f"cannot publish checkpoint {cp.id}: log rows {done}..{cp.tree_size - 1}")
        data = ("\n".join(lines) + "\n").encode()
        store.put_bytes(
            store.originals, segment_key(done, cp.tree_size), data, "application/jsonl", retain_until=until
        )
        signed = {"body": cp.body, "key_id": cp.key_id, "signature": cp.signature}
        store.put_bytes(
            store.originals,
            checkpoint_key(cp.tree_size),
            canonical_json(signed),
            "application/json",
            retain_until=until,
        )
        done = cp.tree_size
    return done


def _lock_published(store: ObjectStore, until: datetime) -> None:
    """Lock what was published unlocked: the segments, then the checkpoints oldest first, so the newest
    checkpoint (whose lock is the sign that this is done) is locked last and an interrupted run is
    taken up again by the next publish."""
    for a, b in segments(store):
        store.extend_retention(store.originals, segment_key(a, b), until)
    for size in published_sizes(store):
        store.extend_retention(store.originals, checkpoint_key(size), until)


def _check_locks(store: ObjectStore, report: Report, now: datetime, sizes: list[int]) -> None:
    """Each published object must be under retention that has not run out."""
    unlocked = []
    for key in published_keys(store, sizes):
        until = store.lock_state(store.originals, key).retain_until
        if until is None or until <= now:
            unlocked.append((key, until))
    for key, until in unlocked[:NAMED_MAX]:
        report.add(
            Problem.PUBLISHED_UNLOCKED,
            f"{store.originals}/{key}",
            "no Object Lock retention: it can be deleted or overwritten"
            if until is None
            else f"its Object Lock retention ran out at {localtime.format_local(until)}",
        )


def _published_leaves(store: ObjectStore, upto: int) -> list[tuple[int, int, dict[str, Any] | None, str]]:
    """(idx, segment end, leaf document, leaf hash) for leaves 0..upto-1, from the segments."""
    out: list[tuple[int, int, dict[str, Any] | None, str]] = []
    for a, b in segments(store):
        if a >= upto or a != len(out):
            continue
        raw = store.read_bytes(store.originals, segment_key(a, b))
        for line in raw.decode().splitlines():
            if line:
                doc = json.loads(line)
                out.append((int(doc["idx"]), b, doc.get("leaf"), str(doc["leaf_hash"])))
    return out[:upto]


def _describe(doc: dict[str, Any]) -> str:
    return f" (event {doc['id']}: {doc['action']} on {doc['subject_type']} {doc['subject_id']})"


def verify_published(
    session: Session, store: ObjectStore, keyring: Keyring, report: Report, clock: Clock = utcnow
) -> None:
    """Compare the database's custody log with the last checkpoint published outside it. Names each
    entry the database lacks (a restore to an earlier point, a rollback) and each that differs, and
    each published object not under Object Lock retention."""
    try:
        sizes = published_sizes(store)
    except CustodyError as exc:
        report.add(Problem.PUBLISHED_UNREADABLE, "published checkpoints", str(exc))
        return
    if not sizes:
        return
    try:
        _compare_published(session, store, keyring, report, sizes)
    finally:  # the locks are checked whatever the comparison found; a failed check never hides it
        try:
            _check_locks(store, report, clock(), sizes)
        except CustodyError as exc:
            report.add(Problem.PUBLISHED_UNREADABLE, "published objects' locks", str(exc))


def _compare_published(
    session: Session, store: ObjectStore, keyring: Keyring, report: Report, sizes: list[int]
) -> None:
    report.published_tree_size = sizes[-1]
    try:
        pub = read_checkpoint(store, sizes[-1])
        keyring.verify(pub.body, Signature(pub.key_id, pub.signature))
    except (CustodyError, ObjectMissing, ValueError, KeyError) as exc:
        report.add(Problem.CHECKPOINT_INVALID, f"published checkpoint {sizes[-1]}", str(exc))
        return
    leaves = _published_leaves(store, pub.tree_size)
    stream = merkle.StreamingRoot()
    for _, _, _doc, h in leaves:
        stream.add(bytes.fromhex(h))
    if stream.size != pub.tree_size or stream.root().hex() != pub.root_hash:
        report.add(
            Problem.CHECKPOINT_INVALID,
            f"published checkpoint {pub.tree_size}",
            f"the published log segments hold {stream.size} entries hashing to {stream.root().hex()}, "
            f"not the signed {pub.tree_size} entries with root {pub.root_hash}",
        )
        return
    db_size = ledger.tree_size(session)
    common = min(db_size, pub.tree_size)
    q = select(LogLeaf.idx, LogLeaf.leaf_hash).where(LogLeaf.idx < common).order_by(col(LogLeaf.idx))
    db_hashes: dict[int, str] = dict(session.exec(q).all())
    for idx, _, doc, h in leaves[:common]:
        if db_hashes.get(idx) != h:
            report.add(
                Problem.LOG_ENTRY_CHANGED,
                f"log leaf {idx}",
                "the database's entry differs from the published one" + (_describe(doc) if doc else ""),
            )
    if db_size >= pub.tree_size:
        return
    missing = leaves[db_size:]
    subjects = Counter(f"{d['subject_type']} {d['subject_id']}" for _, _, d, _ in missing if d)
    report.add(
        Problem.LOG_ROLLED_BACK,
        f"log leaves {db_size}..{pub.tree_size - 1}",
        f"the database's custody log ends at {db_size} entries, but a checkpoint of {pub.tree_size} entries "
        f"was signed at {pub.signed_at} and published outside the database: the database lacks "
        f"{len(missing)} entries (restored to an earlier point or rolled back); they concern "
        + ", ".join(f"{s} ({n})" for s, n in sorted(subjects.items())),
    )
    for idx, _, d, _ in missing[:NAMED_MAX]:
        if d is None:
            continue
        report.add(
            Problem.PUBLISHED_ENTRY_MISSING,
            f"event {d['id']}",
            f"log leaf {idx}: {d['action']} by {d['actor']} on {d['subject_type']} {d['subject_id']} "
            f"at {d['at']} is in the published log but not in the database",
        )

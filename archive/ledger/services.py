"""Sequencing events into the Merkle log, signing checkpoints, serving proofs.

Threats this answers: an insider (or a compromised service account) who edits, removes or
reorders custody entries after the fact. Once a checkpoint is signed and handed out (to an auditor,
into an export), any later change to an entry it covers changes the root, and any removal breaks
the consistency proof from that checkpoint to the current tree.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from archive.access import Permission, authorize
from archive.accounts.models import User
from archive.clock import Clock, as_utc, utcnow
from archive.errors import IntegrityError, NotFound
from archive.i18n import _
from archive.ledger import merkle
from archive.ledger.models import Checkpoint, CheckpointPublic, LogLeaf, LogNode
from archive.models import Event
from archive.signing import ALGORITHM, Keyring, PublicKeyInfo, Signature, canonical_json

LOG_ORIGIN = "custody-log/v1"
TILE_LEVEL = 8  # perfect subtrees of 2^8 = 256 leaves and larger are stored in log_nodes
TILE = 1 << TILE_LEVEL
SEQUENCE_BATCH = 5000
# pg_advisory_xact_lock key ("custody" in ASCII): one sequencer at a time across all processes.
_SEQUENCER_LOCK = 0x637573746F6479


class LogCorrupt(IntegrityError):
    """The stored log is not a dense, consistent tree (rows missing or changed)."""

    code = "ledger.corrupt"


LEAF_V2 = 2  # leaves that commit to the client address instead of holding it (issue 10, finding 6)


def address_commitment(key_hex: str, addr: str) -> str:
    """HMAC-SHA256(k_event, address), hex. A keyed MAC, not a salted hash: the IPv4 space is small
    enough to search, so without the event's key the commitment says nothing about the address."""
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:  # a key edited by hand: hash what is there, the leaf will not match
        key = key_hex.encode("utf-8")
    return hmac.new(key, addr.encode("utf-8"), hashlib.sha256).hexdigest()


def leaf_document(ev: Event) -> dict[str, Any]:
    """The facts of one event, as hashed into the log. Datetimes as ISO 8601 UTC strings.

    Two formats, told apart by ``"v"``. Events written before migration 0014_ledger_addr have no
    ``addr_key`` and keep their version 1 leaf, which holds ``client_addr`` (so the leaves,
    checkpoints and exports made before stay verifiable). Every later event's leaf is version 2:
    ``"v": 2`` and ``client_addr_commit`` = HMAC-SHA256(addr_key, client_addr) in place of the
    address; the address and key are shown only to someone entitled to them (:func:`address_opening`).
    """
    doc: dict[str, Any] = {
        "id": ev.id,
        "at": as_utc(ev.at).isoformat(),
        "actor": ev.actor,
        "action": ev.action,
        "subject_type": ev.subject_type,
        "subject_id": ev.subject_id,
        "outcome": ev.outcome.value,
        "details": ev.details,
    }
    if ev.addr_key is None:
        doc["client_addr"] = ev.client_addr
    else:
        doc["v"] = LEAF_V2
        doc["client_addr_commit"] = address_commitment(ev.addr_key, ev.client_addr)
    return doc


def address_opening(ev: Event) -> dict[str, str]:
    """What checks a version 2 leaf's commitment: the address and the event's key."""
    if ev.addr_key is None:
        return {}  # a version 1 leaf holds the address itself
    return {"client_addr": ev.client_addr, "client_addr_key": ev.addr_key}


def leaf_bytes(ev: Event) -> bytes:
    return canonical_json(leaf_document(ev))


def event_leaf_hash(ev: Event) -> bytes:
    return merkle.leaf_hash(leaf_bytes(ev))


def _lock_sequencer(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # Held until commit: two sequencers never hand out the same index or interleave batches.
        session.exec(text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=_SEQUENCER_LOCK))  # type: ignore[call-overload]
    # SQLite has one writer at a time; the unique idx and event_id make a racing batch fail whole.


def tree_size(session: Session) -> int:
    n = session.exec(select(LogLeaf.idx).order_by(col(LogLeaf.idx).desc()).limit(1)).first()
    return 0 if n is None else n + 1


def _unsequenced(session: Session, limit: int) -> list[Event]:
    # Not "id > last sequenced id": on PostgreSQL ids are handed out at INSERT but become visible
    # at COMMIT, so event 41 can appear after 42 was sequenced. Sequence what is committed and
    # not yet in the log, in id order.
    sequenced = select(LogLeaf.event_id).where(LogLeaf.event_id == Event.id)
    q = select(Event).where(~sequenced.exists()).order_by(col(Event.id)).limit(limit)
    return list(session.exec(q))


def sequence(session: Session, *, clock: Clock = utcnow, batch: int = SEQUENCE_BATCH) -> int:
    """Give the next dense leaf indices to committed, unsequenced events (one batch). Returns how many.
    The caller commits; the lock is held until then."""
    _lock_sequencer(session)
    events = _unsequenced(session, batch)
    if not events:
        return 0
    start = tree_size(session)
    now = clock()
    fresh: dict[int, bytes] = {}
    for i, ev in enumerate(events):
        h = event_leaf_hash(ev)
        assert ev.id is not None
        fresh[start + i] = h
        session.add(LogLeaf(idx=start + i, event_id=ev.id, leaf_hash=h.hex(), sequenced_at=now))
    session.flush()
    _store_nodes(session, start, start + len(events), fresh)
    return len(events)


def sequence_all(session: Session, *, clock: Clock = utcnow) -> int:
    total = 0
    while n := sequence(session, clock=clock):
        total += n
    return total


def _store_nodes(session: Session, old_size: int, new_size: int, fresh: dict[int, bytes]) -> None:
    """Store every perfect subtree of >= 256 leaves that the append completed."""
    src = SubtreeSource(session, fresh)
    for tile in range(old_size // TILE, new_size // TILE):
        if (tile + 1) * TILE <= old_size:
            continue
        level, idx = TILE_LEVEL, tile
        h = src.leaf_range_root(tile * TILE, (tile + 1) * TILE)
        while True:
            session.add(LogNode(level=level, idx=idx, hash=h.hex()))
            src.nodes[(level, idx)] = h
            if idx % 2 == 0:
                break
            h = merkle.node_hash(src.node(level, idx - 1), h)
            level, idx = level + 1, idx // 2
    session.flush()


class SubtreeSource:
    """MTH(D[a:b]) from the database: stored perfect subtrees where they exist, leaf hashes
    (at most 255 per ragged edge) where they do not. Bounded memory: nothing scales with n."""

    def __init__(self, session: Session, fresh: dict[int, bytes] | None = None) -> None:
        self.session = session
        self.fresh = fresh or {}
        self.nodes: dict[tuple[int, int], bytes] = {}

    def node(self, level: int, idx: int) -> bytes:
        got = self.nodes.get((level, idx))
        if got is None:
            row = self.session.get(LogNode, (level, idx))
            if row is None:
                raise LogCorrupt(
                    _("stored subtree ({level}, {idx}) of the custody log is missing").format(
                        level=level, idx=idx
                    )
                )
            got = self.nodes[(level, idx)] = bytes.fromhex(row.hash)
        return got

    def leaf_range_root(self, a: int, b: int) -> bytes:
        known = [self.fresh.get(i) for i in range(a, b)]
        if all(h is not None for h in known):
            return merkle.root_of(h for h in known if h is not None)
        rows = list(
            self.session.exec(
                select(LogLeaf.idx, LogLeaf.leaf_hash)
                .where(LogLeaf.idx >= a, LogLeaf.idx < b)
                .order_by(col(LogLeaf.idx))
            )
        )
        if [r[0] for r in rows] != list(range(a, b)):
            raise LogCorrupt(
                _("custody log leaves {a}..{value} are not all present").format(a=a, value=b - 1)
            )
        return merkle.root_of(self.fresh.get(i) or bytes.fromhex(h) for i, h in rows)

    def __call__(self, a: int, b: int) -> bytes:
        n = b - a
        if n <= 0:
            return merkle.EMPTY_ROOT
        if n & (n - 1) == 0 and a % n == 0 and n >= TILE:
            return self.node(n.bit_length() - 1, a // n)
        if n <= TILE:
            return self.leaf_range_root(a, b)
        k = merkle.split_point(n)
        return merkle.node_hash(self(a, a + k), self(a + k, b))


def root_hash(session: Session, size: int | None = None) -> bytes:
    n = tree_size(session) if size is None else size
    return SubtreeSource(session)(0, n)


# Checkpoints ------------------------------------------------------------------------------------


def checkpoint_body(size: int, root: bytes, signed_at: str, key_id: str) -> dict[str, Any]:
    return {
        "origin": LOG_ORIGIN,
        "tree_size": size,
        "root_hash": root.hex(),
        "timestamp": signed_at,
        "algorithm": ALGORITHM,
        "key_id": key_id,
    }


def latest_checkpoint(session: Session) -> Checkpoint | None:
    return session.exec(select(Checkpoint).order_by(col(Checkpoint.id).desc()).limit(1)).first()


def sign_checkpoint(
    session: Session, keyring: Keyring, *, clock: Clock = utcnow, force: bool = True
) -> Checkpoint:
    """Sequence everything committed, then sign (size, root, time). With ``force=False`` (the
    schedule) an unchanged tree keeps its latest checkpoint instead of piling up identical ones."""
    sequence_all(session, clock=clock)
    size = tree_size(session)
    last = latest_checkpoint(session)
    if not force and last is not None and last.tree_size == size:
        return last
    root = root_hash(session, size)
    now = as_utc(clock())
    key_id = keyring.current_key_id()
    body = checkpoint_body(size, root, now.isoformat(), key_id)
    sig = keyring.sign(body)
    if sig.key_id != key_id:  # a rotation between the two calls: sign again under the new key
        body["key_id"] = sig.key_id
        sig = keyring.sign(body)
    cp = Checkpoint(
        tree_size=size,
        root_hash=root.hex(),
        signed_at=now,
        key_id=sig.key_id,
        signature=sig.signature_b64,
        body=body,
    )
    session.add(cp)
    session.flush()
    return cp


def verify_checkpoint(cp: Checkpoint, keys: list[PublicKeyInfo], keyring: Keyring) -> None:
    """Raise SignatureInvalid/IntegrityError unless the stored row is what its signature covers."""
    if {k.key_id for k in keys} and cp.key_id not in {k.key_id for k in keys}:
        raise IntegrityError(
            _("checkpoint {id} is signed by unknown key {key_id}").format(id=cp.id, key_id=cp.key_id)
        )
    keyring.verify(cp.body, Signature(cp.key_id, cp.signature))
    b = cp.body
    if (b.get("tree_size"), b.get("root_hash"), b.get("key_id")) != (cp.tree_size, cp.root_hash, cp.key_id):
        raise IntegrityError(
            _("checkpoint {id}: the row's size, root or key differ from its signed body").format(id=cp.id)
        )


# Proofs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InclusionProof:
    """An event's leaf and its inclusion path. ``opening`` (the address and key of a version 2
    leaf) only for someone entitled to the address; ``withheld`` names fields taken out of a
    version 1 leaf for someone who is not (then only ``leaf_hash`` is proven, not the leaf)."""

    event_id: int
    leaf_index: int
    tree_size: int
    leaf: dict[str, Any]
    leaf_hash: str
    path: list[str]
    opening: dict[str, str] = field(default_factory=dict)
    withheld: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "leaf": self.leaf,
            "leaf_hash": self.leaf_hash,
            "inclusion_path": self.path,
            **self.opening,
        }
        if self.withheld:
            out["withheld"] = self.withheld
        return out


def leaf_for_event(session: Session, event_id: int) -> LogLeaf:
    leaf = session.exec(select(LogLeaf).where(LogLeaf.event_id == event_id)).first()
    if leaf is None:
        raise NotFound(
            _("event {event_id} is not (yet) in the custody log; the next checkpoint sequences it").format(
                event_id=event_id
            )
        )
    return leaf


def inclusion(session: Session, event_id: int, size: int, *, show_address: bool = True) -> InclusionProof:
    """The event's leaf and inclusion path in the tree of ``size``. ``show_address=False`` (an
    export for someone not entitled to this event's client address): a version 2 leaf goes as
    hashed, with its commitment only; a version 1 leaf holding a non-empty address goes without it,
    marked withheld (its hash is still proven, its text no longer is)."""
    leaf = leaf_for_event(session, event_id)
    if leaf.idx >= size:
        raise NotFound(
            _("event {event_id} is leaf {idx}, after the tree of size {size}").format(
                event_id=event_id, idx=leaf.idx, size=size
            )
        )
    ev = session.get(Event, event_id)
    if ev is None:
        raise LogCorrupt(
            _("event {event_id} is in the log as leaf {idx} but its row is gone").format(
                event_id=event_id, idx=leaf.idx
            )
        )
    path = merkle.inclusion_proof(leaf.idx, size, SubtreeSource(session))
    doc = leaf_document(ev)
    # An empty address (system actors) is no secret: shipped open, so the leaf stays checkable.
    if show_address or not ev.client_addr:
        opening, withheld = address_opening(ev), []
    elif ev.addr_key is None:
        opening, withheld = {}, ["client_addr"]
        doc.pop("client_addr")
    else:
        opening, withheld = {}, []
    return InclusionProof(
        event_id, leaf.idx, size, doc, leaf.leaf_hash, [p.hex() for p in path], opening, withheld
    )


def consistency(session: Session, first: int, second: int) -> list[str]:
    if second > tree_size(session):
        raise NotFound(_("the log has fewer than {second} entries").format(second=second))
    return [p.hex() for p in merkle.consistency_proof(first, second, SubtreeSource(session))]


def iter_leaves(session: Session, batch: int = 10000) -> Iterator[LogLeaf]:
    """All leaves in index order, a batch at a time (keyset pagination: bounded memory)."""
    after = -1
    while True:
        rows = list(
            session.exec(select(LogLeaf).where(LogLeaf.idx > after).order_by(col(LogLeaf.idx)).limit(batch))
        )
        if not rows:
            return
        yield from rows
        after = rows[-1].idx


def b64(sig: bytes) -> str:
    return base64.b64encode(sig).decode("ascii")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- for auditors
# What the audit API answers: each checks the auditor's permission, then reads.


def checkpoints_for(session: Session, user: User, limit: int) -> tuple[int, list[CheckpointPublic]]:
    """The tree size sequenced now (may be ahead of the latest checkpoint) and the latest checkpoints."""
    authorize(user, Permission.AUDIT, "do this")
    rows = session.exec(select(Checkpoint).order_by(col(Checkpoint.id).desc()).limit(limit))
    return tree_size(session), [CheckpointPublic.model_validate(r.model_dump()) for r in rows]


def sign_checkpoint_for(session: Session, user: User, keyring: Keyring) -> CheckpointPublic:
    """Sequence everything committed and sign a checkpoint now (on demand, besides the schedule)."""
    authorize(user, Permission.AUDIT, "do this")
    return CheckpointPublic.model_validate(sign_checkpoint(session, keyring).model_dump())


def _checkpoint_of_size(session: Session, size: int | None) -> Checkpoint:
    q = select(Checkpoint).order_by(col(Checkpoint.id).desc())
    if size is not None:
        q = q.where(Checkpoint.tree_size == size)
    cp = session.exec(q.limit(1)).first()
    if cp is None:
        raise NotFound(
            _("no signed checkpoint of size {size}").format(size=size)
            if size is not None
            else _("no signed checkpoint yet")
        )
    return cp


def inclusion_for(
    session: Session, user: User, event_id: int, size: int | None
) -> tuple[InclusionProof, CheckpointPublic]:
    """The event's leaf and its inclusion path to a signed checkpoint (the latest by default), with
    the client address and, for a version 2 leaf, the key that checks its commitment: the audit
    permission reads the whole log, addresses included."""
    authorize(user, Permission.AUDIT, "do this")
    cp = _checkpoint_of_size(session, size)
    return inclusion(session, event_id, cp.tree_size), CheckpointPublic.model_validate(cp.model_dump())


@dataclass(frozen=True)
class ConsistencyAnswer:
    first: int
    second: int
    first_root: str
    second_root: str
    consistency_path: list[str]


def consistency_for(session: Session, user: User, first: int, second: int) -> ConsistencyAnswer:
    """RFC 6962 consistency proof that the tree of size ``second`` extends the one of size ``first``."""
    authorize(user, Permission.AUDIT, "do this")
    if first > second:
        raise NotFound(_("first must not be larger than second"))
    path = consistency(session, first, second)
    return ConsistencyAnswer(
        first=first,
        second=second,
        first_root=root_hash(session, first).hex(),
        second_root=root_hash(session, second).hex(),
        consistency_path=path,
    )

"""Classification (facts -> decision), enforcement in S3, the sweep and its report.

Classification is a pure function of facts and the policy. Facts: the recording time on the
corrected clock, reviewers' flags (each with a reason), legal holds, the recorder's "important"
mark and whether a reviewer has looked, and the cases the item is linked to. It is recomputed
whenever a fact changes, and again inside the sweep's lock before anything is deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import tuple_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive import events
from archive.cases.models import Case, CaseMedia
from archive.clock import Clock, as_utc, utcnow
from archive.db import session_scope
from archive.errors import Conflict, InvalidInput, NotFound, ObjectMissing
from archive.ingest.models import Upload
from archive.media.models import Derivative, Media, MediaState
from archive.models import Event, Tombstone
from archive.signing import Keyring
from archive.storage import ObjectStore
from retention.models import LegalHold, PolicyVersion, RetentionFlag, RetentionStatus
from retention.policy import FlagKind, Keep, Policy, add_months, default_policy, parse_policy

log = logging.getLogger("custody.retention")
SWEEP_ACTOR = "system:retention-sweep"
_RANK = {Keep.PERMANENT: 3, Keep.CASE_FILE: 2, Keep.UNTIL_REVIEWED: 1, Keep.PERIOD: 0}


# Facts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFact:
    case_id: str
    kind: str  # "administrative" | "criminal"
    used_as_evidence: bool


@dataclass(frozen=True)
class Facts:
    media_id: str
    recorded_at: datetime  # true time: device clock corrected by the measured offset
    flags: frozenset[FlagKind] = frozenset()
    reviewed: bool = False
    cases: tuple[CaseFact, ...] = ()
    legal_hold: bool = False


# Events after which an item's retention facts may have changed without a retention call
# (the cases domain sits below retention and cannot call it): `refresh_changed` re-reads them.
FACT_EVENTS = ("case.link", "case.unlink")


def _case_facts(session: Session, media_id: str, evidence: bool) -> list[CaseFact]:
    """Open case links of the item. Whether it is *used as evidence* is a reviewer's statement
    (the `evidence` flag, with a reason naming the case), not something a link implies."""
    rows = session.exec(
        select(Case.id, Case.kind)
        .join(CaseMedia, col(CaseMedia.case_id) == col(Case.id))
        .where(CaseMedia.media_id == media_id, col(CaseMedia.unlinked_at).is_(None))
    ).all()
    return [CaseFact(case_id, str(kind), evidence) for case_id, kind in rows]


def gather_facts(session: Session, media: Media) -> Facts:
    recorded = media.recorded_at or media.received_at
    recorded = as_utc(recorded) - timedelta(seconds=media.clock_offset_s)
    flags = {
        f.kind
        for f in session.exec(
            select(RetentionFlag).where(
                RetentionFlag.media_id == media.id, col(RetentionFlag.cleared_at).is_(None)
            )
        )
    }
    upload = session.get(Upload, media.upload_id) if media.upload_id else None
    if upload is not None and str(upload.metadata_.get("important", "")).lower() in {"1", "true", "yes"}:
        flags.add(FlagKind.IMPORTANT)
    reviewed = (
        session.exec(
            select(Event.id).where(Event.subject_id == media.id, Event.action == "media.reviewed").limit(1)
        ).first()
        is not None
    )
    held = (
        session.exec(
            select(LegalHold.id)
            .where(LegalHold.media_id == media.id, col(LegalHold.released_at).is_(None))
            .limit(1)
        ).first()
        is not None
    )
    cases = _case_facts(session, media.id, FlagKind.EVIDENCE in flags)
    return Facts(media.id, recorded, frozenset(flags), reviewed, tuple(cases), held)


# Decision ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    rule_id: str
    keep: Keep
    until: datetime | None  # None: indefinite
    description: str


@dataclass(frozen=True)
class Decision:
    policy_version: int
    applies: tuple[Applied, ...]
    winner: Applied
    legal_hold: bool

    @property
    def delete_after(self) -> datetime | None:
        return None if self.legal_hold else self.winner.until

    @property
    def protected(self) -> bool:
        return self.delete_after is None

    def explain(self) -> dict[str, Any]:
        return {
            "policy_version": self.policy_version,
            "rules": [
                {
                    "rule": a.rule_id,
                    "keep": a.keep.value,
                    "until": a.until.isoformat() if a.until else None,
                    "why": a.description,
                }
                for a in self.applies
            ],
            "winner": self.winner.rule_id,
            "legal_hold": self.legal_hold,
            "delete_after": self.delete_after.isoformat() if self.delete_after else None,
            "result": "permanent"
            if self.winner.keep is Keep.PERMANENT
            else (
                "kept" if self.protected else f"delete after {self.delete_after.isoformat()}"  # type: ignore[union-attr]
            ),
        }


def _matches(rule_when: Any, facts: Facts) -> bool:
    if rule_when.flag is not None and rule_when.flag not in facts.flags:
        return False
    if rule_when.case_kinds is not None or rule_when.used_as_evidence is not None:
        kinds = set(rule_when.case_kinds or [])
        hits = [
            c
            for c in facts.cases
            if (not kinds or c.kind in kinds)
            and (rule_when.used_as_evidence is None or c.used_as_evidence == rule_when.used_as_evidence)
        ]
        if not hits:
            return False
    return True


def classify(facts: Facts, policy: Policy) -> Decision:
    """Every rule that applies, and the longest of them. Pure: no clock, no I/O."""
    applies = [
        Applied(
            "default",
            Keep.PERIOD,
            add_months(facts.recorded_at, policy.default_months),
            f"default: {policy.default_months} calendar months from the recording",
        )
    ]
    for rule in policy.rules:
        if not _matches(rule.when, facts):
            continue
        if rule.keep is Keep.UNTIL_REVIEWED and facts.reviewed:
            continue  # a reviewer has looked: this hold has done its work
        until = (
            add_months(facts.recorded_at, rule.months) if rule.keep is Keep.PERIOD and rule.months else None
        )
        applies.append(Applied(rule.id, rule.keep, until, rule.description))

    def length(a: Applied) -> tuple[int, datetime]:
        return (_RANK[a.keep], a.until or datetime.max.replace(tzinfo=UTC))

    winner = max(applies, key=length)
    return Decision(policy.version, tuple(applies), winner, facts.legal_hold)


# Policy versions ---------------------------------------------------------------------------


def current_policy(session: Session) -> Policy:
    row = session.exec(select(PolicyVersion).order_by(col(PolicyVersion.version).desc())).first()
    return parse_policy(row.body) if row else default_policy()


def set_policy(session: Session, data: Any, *, actor: str, reason: str, client_addr: str = "") -> Policy:
    if not reason.strip():
        raise InvalidInput("a policy change needs a reason")
    current = current_policy(session)
    policy = parse_policy({**data, "version": current.version + 1})
    session.add(PolicyVersion(version=policy.version, body=policy.to_json(), created_by=actor, reason=reason))
    events.record(
        session,
        actor=actor,
        action="retention.policy",
        subject_type="policy",
        subject_id=str(policy.version),
        client_addr=client_addr,
        details={"reason": reason, "previous_version": current.version},
    )
    return policy


# Enforcement -------------------------------------------------------------------------------


def recompute(
    session: Session,
    store: ObjectStore,
    media: Media,
    *,
    actor: str,
    reason: str,
    policy: Policy | None = None,
    clock: Clock = utcnow,
    client_addr: str = "",
) -> Decision | None:
    """Classify one item from its facts, write the result, and make S3 enforce it: protected
    items carry a legal hold; dated ones a COMPLIANCE retain-until date, extended, never shortened."""
    if not media.state.archived:
        return None
    decision = classify(gather_facts(session, media), policy or current_policy(session))
    status = session.get(RetentionStatus, media.id)
    before = (
        None if status is None else (status.rule_id, status.delete_after, status.protected, status.legal_hold)
    )
    if status is None:
        status = RetentionStatus(
            media_id=media.id, policy_version=decision.policy_version, rule_id="", keep=Keep.PERIOD
        )
    bucket, key = store.originals, media.object_key
    if decision.protected:
        if not status.storage_legal_hold:
            store.set_legal_hold(bucket, key, True)
            status.storage_legal_hold = True
    else:
        if status.storage_legal_hold:
            store.set_legal_hold(bucket, key, False)
            status.storage_legal_hold = False
        assert decision.delete_after is not None
        # S3 refuses retain-until dates in the past; such an item is simply due.
        if decision.delete_after > utcnow():
            status.storage_retain_until = store.extend_retention(bucket, key, decision.delete_after)
    delete_after = decision.delete_after
    if delete_after is not None and status.storage_retain_until is not None:
        # Storage never shortens: the item cannot go before its lock date, whatever the policy says now.
        delete_after = max(delete_after, as_utc(status.storage_retain_until))
    status.policy_version = decision.policy_version
    status.rule_id = decision.winner.rule_id
    status.keep = decision.winner.keep
    status.delete_after = delete_after
    status.protected = decision.protected
    status.legal_hold = decision.legal_hold
    status.explanation = decision.explain()
    status.computed_at = clock()
    session.add(status)
    after = (status.rule_id, status.delete_after, status.protected, status.legal_hold)
    if before is None or tuple(as_utc(x) if isinstance(x, datetime) else x for x in before) != after:
        events.record(
            session,
            actor=actor,
            action="retention.classify",
            subject_type="media",
            subject_id=media.id,
            client_addr=client_addr,
            clock=clock,
            details={
                "reason": reason,
                "rule": status.rule_id,
                "delete_after": delete_after.isoformat() if delete_after else None,
                "protected": status.protected,
                "legal_hold": status.legal_hold,
            },
        )
    session.flush()
    return decision


def _media(session: Session, media_id: str) -> Media:
    media = session.exec(select(Media).where(Media.id == media_id).with_for_update()).first()
    if media is None:
        raise NotFound(f"no media {media_id}")
    return media


def set_flag(
    session: Session,
    store: ObjectStore,
    media_id: str,
    kind: FlagKind,
    *,
    actor: str,
    reason: str,
    client_addr: str = "",
    clock: Clock = utcnow,
) -> Decision | None:
    if not reason.strip():
        raise InvalidInput("a flag needs a reason")
    media = _media(session, media_id)
    active = session.exec(
        select(RetentionFlag).where(
            RetentionFlag.media_id == media_id,
            RetentionFlag.kind == kind,
            col(RetentionFlag.cleared_at).is_(None),
        )
    ).first()
    if active is None:
        session.add(RetentionFlag(media_id=media_id, kind=kind, reason=reason, set_by=actor, set_at=clock()))
        events.record(
            session,
            actor=actor,
            action="retention.flag",
            subject_type="media",
            subject_id=media_id,
            client_addr=client_addr,
            clock=clock,
            details={"flag": kind, "reason": reason},
        )
        session.flush()
    return recompute(
        session,
        store,
        media,
        actor=actor,
        reason=f"flag {kind} set: {reason}",
        clock=clock,
        client_addr=client_addr,
    )


def clear_flag(
    session: Session,
    store: ObjectStore,
    media_id: str,
    kind: FlagKind,
    *,
    actor: str,
    reason: str,
    client_addr: str = "",
    clock: Clock = utcnow,
) -> Decision | None:
    if not reason.strip():
        raise InvalidInput("clearing a flag needs a reason")
    media = _media(session, media_id)
    flags = session.exec(
        select(RetentionFlag).where(
            RetentionFlag.media_id == media_id,
            RetentionFlag.kind == kind,
            col(RetentionFlag.cleared_at).is_(None),
        )
    ).all()
    if not flags:
        raise NotFound(f"media {media_id} has no active {kind} flag")
    for f in flags:
        f.cleared_at, f.cleared_by, f.clear_reason = clock(), actor, reason
        session.add(f)
    events.record(
        session,
        actor=actor,
        action="retention.unflag",
        subject_type="media",
        subject_id=media_id,
        client_addr=client_addr,
        clock=clock,
        details={"flag": kind, "reason": reason},
    )
    session.flush()
    return recompute(
        session,
        store,
        media,
        actor=actor,
        reason=f"flag {kind} cleared: {reason}",
        clock=clock,
        client_addr=client_addr,
    )


def place_hold(
    session: Session,
    store: ObjectStore,
    media_id: str,
    *,
    actor: str,
    reason: str,
    client_addr: str = "",
    clock: Clock = utcnow,
) -> LegalHold:
    if not reason.strip():
        raise InvalidInput("a legal hold needs a reason")
    media = _media(session, media_id)
    hold = LegalHold(media_id=media_id, reason=reason, placed_by=actor, placed_at=clock())
    session.add(hold)
    session.flush()
    events.record(
        session,
        actor=actor,
        action="retention.hold",
        subject_type="media",
        subject_id=media_id,
        client_addr=client_addr,
        clock=clock,
        details={"hold": hold.id, "reason": reason},
    )
    recompute(
        session,
        store,
        media,
        actor=actor,
        reason=f"legal hold placed: {reason}",
        clock=clock,
        client_addr=client_addr,
    )
    return hold


def release_hold(
    session: Session,
    store: ObjectStore,
    hold_id: int,
    *,
    actor: str,
    reason: str,
    client_addr: str = "",
    clock: Clock = utcnow,
) -> Decision | None:
    """A reason is required. Who may release is decided by the caller: ``retention.actions.release``
    (Permission.RETENTION_HOLD_RELEASE, records managers only) for people."""
    if not reason.strip():
        raise InvalidInput("releasing a legal hold needs a reason")
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise NotFound(f"no legal hold {hold_id}")
    if hold.released_at is not None:
        raise Conflict(f"legal hold {hold_id} was already released")
    media = _media(session, hold.media_id)
    hold.released_at, hold.released_by, hold.release_reason = clock(), actor, reason
    session.add(hold)
    events.record(
        session,
        actor=actor,
        action="retention.release",
        subject_type="media",
        subject_id=media.id,
        client_addr=client_addr,
        clock=clock,
        details={"hold": hold_id, "reason": reason},
    )
    session.flush()
    return recompute(
        session,
        store,
        media,
        actor=actor,
        reason=f"legal hold released: {reason}",
        clock=clock,
        client_addr=client_addr,
    )


def mark_reviewed(
    session: Session,
    store: ObjectStore,
    media_id: str,
    *,
    actor: str,
    note: str = "",
    client_addr: str = "",
    clock: Clock = utcnow,
) -> Decision | None:
    media = _media(session, media_id)
    events.record(
        session,
        actor=actor,
        action="media.reviewed",
        subject_type="media",
        subject_id=media_id,
        client_addr=client_addr,
        clock=clock,
        details={"note": note},
    )
    session.flush()
    return recompute(
        session, store, media, actor=actor, reason="reviewed", clock=clock, client_addr=client_addr
    )


def classify_pending(engine: Engine, store: ObjectStore, *, clock: Clock = utcnow, limit: int = 500) -> int:
    """Give every archived original without a classification its first one (new arrivals)."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(Media)
            .outerjoin(RetentionStatus, col(RetentionStatus.media_id) == col(Media.id))
            .where(
                col(RetentionStatus.media_id).is_(None),
                col(Media.archived_sha256).is_not(None),
                col(Media.state).in_([s for s in MediaState if s.archived]),
            )
            .limit(limit)
        ).all()
        policy = current_policy(session)
        for media in rows:
            recompute(
                session,
                store,
                media,
                actor=SWEEP_ACTOR,
                reason="first classification",
                policy=policy,
                clock=clock,
            )
    return len(rows)


def refresh_changed(engine: Engine, store: ObjectStore, *, clock: Clock = utcnow, limit: int = 500) -> int:
    """Reclassify items whose case links changed since their last classification."""
    with session_scope(engine) as session:
        ids = session.exec(
            select(Event.subject_id)
            .join(RetentionStatus, col(RetentionStatus.media_id) == col(Event.subject_id))
            .where(
                col(Event.action).in_(FACT_EVENTS),
                Event.subject_type == "media",
                col(Event.at) > col(RetentionStatus.computed_at),
                col(RetentionStatus.deleted_at).is_(None),
            )
            .distinct()
            .limit(limit)
        ).all()
        policy = current_policy(session)
        for media_id in ids:
            media = session.get(Media, media_id)
            if media is not None:
                recompute(
                    session,
                    store,
                    media,
                    actor=SWEEP_ACTOR,
                    reason="case links changed",
                    policy=policy,
                    clock=clock,
                )
    return len(ids)


def reclassify_all(engine: Engine, store: ObjectStore, *, clock: Clock = utcnow, batch: int = 500) -> int:
    """After a policy change: every live item, in batches (each its own transaction)."""
    done, last = 0, ""
    while True:
        with session_scope(engine) as session:
            ids = session.exec(
                select(RetentionStatus.media_id)
                .where(col(RetentionStatus.deleted_at).is_(None), col(RetentionStatus.media_id) > last)
                .order_by(col(RetentionStatus.media_id))
                .limit(batch)
            ).all()
            if not ids:
                return done
            policy = current_policy(session)
            for media_id in ids:
                media = session.get(Media, media_id)
                if media is not None:
                    recompute(
                        session,
                        store,
                        media,
                        actor=SWEEP_ACTOR,
                        reason=f"policy v{policy.version}",
                        policy=policy,
                        clock=clock,
                    )
            done += len(ids)
            last = ids[-1]


# Sweep -------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    deleted: list[dict[str, Any]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)  # due by date, kept on re-check (and why)
    dry_run: bool = False


def _tombstone(
    session: Session,
    keyring: Keyring,
    media: Media,
    status: RetentionStatus,
    now: datetime,
    actor: str,
    original_already_missing: bool = False,
) -> Tombstone:
    body = {
        "tombstone_version": 1,
        "media_id": media.id,
        "sha256": media.archived_sha256,
        "size": media.size,
        "file_name": media.file_name,
        "officer": media.officer_badge,
        "device": media.device_serial,
        "recorded_at": as_utc(media.recorded_at).isoformat() if media.recorded_at else None,
        "rule": status.rule_id,
        "policy_version": status.policy_version,
        "delete_after": as_utc(status.delete_after).isoformat() if status.delete_after else None,
        "deleted_at": now.isoformat(),
        "actor": actor,
        "original_already_missing": original_already_missing,
    }
    sig = keyring.sign(body)
    stone = Tombstone(
        media_id=media.id,
        sha256=media.archived_sha256 or media.sha256,
        size=media.size,
        body=body,
        signature=sig.signature_b64,
        key_id=sig.key_id,
        created_at=now,
    )
    session.add(stone)
    return stone


def sweep(
    engine: Engine,
    store: ObjectStore,
    keyring: Keyring,
    *,
    clock: Clock = utcnow,
    batch: int = 200,
    dry_run: bool = False,
    actor: str = SWEEP_ACTOR,
) -> SweepResult:
    """Delete expired, unprotected originals and their derivatives, in batches. Each candidate is
    re-classified inside its row lock (a flag or hold set a moment ago wins). Safe to kill and run
    again: what was deleted is marked in the same transaction as its tombstone; S3 deletes repeat
    harmlessly."""
    result = SweepResult(dry_run=dry_run)
    now = clock()
    # Keyset pagination on (delete_after, media_id): each candidate is visited once per sweep,
    # in due order, without an ever-growing exclusion list.
    after: tuple[datetime, str] | None = None
    while True:
        with session_scope(engine) as session:
            q = (
                select(RetentionStatus)
                .where(
                    col(RetentionStatus.protected).is_(False),
                    col(RetentionStatus.deleted_at).is_(None),
                    col(RetentionStatus.delete_after) <= now,
                )
                .order_by(col(RetentionStatus.delete_after), col(RetentionStatus.media_id))
                .limit(batch)
            )
            if after is not None:
                q = q.where(
                    tuple_(col(RetentionStatus.delete_after), col(RetentionStatus.media_id)) > tuple_(*after)
                )
            if not dry_run:
                # Two sweeps (or a sweep and a reviewer) never fight over the same rows.
                q = q.with_for_update(skip_locked=True)
            rows = session.exec(q).all()
            if not rows:
                return result
            policy = current_policy(session)
            last = rows[-1]
            assert last.delete_after is not None
            after = (last.delete_after, last.media_id)
            for status in rows:
                media = session.exec(select(Media).where(Media.id == status.media_id).with_for_update()).one()
                if dry_run:
                    preview = classify(gather_facts(session, media), policy)
                    entry = {
                        "media_id": media.id,
                        "rule": preview.winner.rule_id,
                        "delete_after": preview.delete_after.isoformat() if preview.delete_after else None,
                    }
                    due = preview.delete_after is not None and preview.delete_after <= now
                    (result.deleted if due else result.kept).append(entry)
                    continue
                decision = recompute(
                    session,
                    store,
                    media,
                    actor=actor,
                    reason="re-checked by the sweep",
                    policy=policy,
                    clock=clock,
                )
                if (
                    decision is None
                    or status.protected
                    or status.delete_after is None
                    or as_utc(status.delete_after) > now
                ):
                    result.kept.append(
                        {
                            "media_id": media.id,
                            "rule": status.rule_id,
                            "why": "protected on re-check" if status.protected else "not yet due",
                        }
                    )
                    continue
                try:
                    lock = store.lock_state(store.originals, media.object_key)
                    already_gone = False
                except ObjectMissing:
                    # An earlier sweep deleted it and died before committing: finish its work. (The
                    # tombstone says so, in case something else removed it: auditors should know.)
                    lock, already_gone = None, True
                if lock and (lock.legal_hold or (lock.retain_until and lock.retain_until > utcnow())):
                    result.kept.append(
                        {
                            "media_id": media.id,
                            "rule": status.rule_id,
                            "why": "storage still locks the original",
                        }
                    )
                    continue
                for d in session.exec(select(Derivative).where(Derivative.media_id == media.id)):
                    store.delete(store.derived, d.object_key)
                store.delete(store.originals, media.object_key)
                stone = _tombstone(session, keyring, media, status, now, actor, already_gone)
                status.deleted_at = now
                media.state = MediaState.DELETED
                media.state_reason = (
                    f"deleted by retention rule {status.rule_id} (policy v{status.policy_version})"
                )
                media.updated_at = now
                session.add_all([status, media])
                events.record(
                    session,
                    actor=actor,
                    action="retention.delete",
                    subject_type="media",
                    subject_id=media.id,
                    clock=clock,
                    details={
                        "sha256": stone.sha256,
                        "size": stone.size,
                        "rule": status.rule_id,
                        "delete_after": stone.body["delete_after"],
                        "tombstone_key": stone.key_id,
                        "tombstone_signature": stone.signature,
                    },
                )
                result.deleted.append({"media_id": media.id, "rule": status.rule_id, "sha256": stone.sha256})
                log.info("retention: deleted media %s (rule %s)", media.id, status.rule_id)


def upcoming(session: Session, now: datetime, days: int) -> list[RetentionStatus]:
    """What becomes deletable within ``days`` (records managers' report)."""
    return list(
        session.exec(
            select(RetentionStatus)
            .where(
                col(RetentionStatus.protected).is_(False),
                col(RetentionStatus.deleted_at).is_(None),
                col(RetentionStatus.delete_after) <= now + timedelta(days=days),
            )
            .order_by(col(RetentionStatus.delete_after))
        )
    )

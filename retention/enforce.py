"""Enforcement: a decision recomputed whenever a fact changes (flags, holds, reviews, case links,
a new policy), written to the database and to S3 Object Lock (retain-until, legal hold)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive import events
from archive.clock import Clock, as_utc, utcnow
from archive.db import session_scope
from archive.errors import Conflict, InvalidInput, NotFound
from archive.i18n import _
from archive.media.models import Media, MediaState
from archive.models import Event
from archive.storage import ObjectStore
from retention.classify import FACT_EVENTS, SWEEP_ACTOR, Decision, classify, current_policy, gather_facts
from retention.models import LegalHold, RetentionFlag, RetentionStatus
from retention.policy import FlagKind, Keep, Policy

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
        raise NotFound(_("no media {media_id}").format(media_id=media_id))
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
        raise InvalidInput(_("a flag needs a reason"))
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
        raise InvalidInput(_("clearing a flag needs a reason"))
    media = _media(session, media_id)
    flags = session.exec(
        select(RetentionFlag).where(
            RetentionFlag.media_id == media_id,
            RetentionFlag.kind == kind,
            col(RetentionFlag.cleared_at).is_(None),
        )
    ).all()
    if not flags:
        raise NotFound(_("media {media_id} has no active {kind} flag").format(media_id=media_id, kind=kind))
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
        raise InvalidInput(_("a legal hold needs a reason"))
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
        raise InvalidInput(_("releasing a legal hold needs a reason"))
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise NotFound(_("no legal hold {hold_id}").format(hold_id=hold_id))
    if hold.released_at is not None:
        raise Conflict(_("legal hold {hold_id} was already released").format(hold_id=hold_id))
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

"""The sweep: delete what expired and nothing protected (re-checked under lock), leaving a signed
tombstone; and the report of what becomes deletable soon."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import tuple_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive import events
from archive.clock import Clock, as_utc, utcnow
from archive.db import session_scope
from archive.errors import ObjectMissing
from archive.media.models import ORIGINAL_AS_PROXY, Derivative, Media, MediaState
from archive.models import Tombstone
from archive.signing import Keyring
from archive.storage import ObjectStore
from retention.classify import SWEEP_ACTOR, classify, current_policy, gather_facts
from retention.enforce import recompute
from retention.models import RetentionStatus

log = logging.getLogger("custody.retention")

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
                    if d.method != ORIGINAL_AS_PROXY:  # that one is the original, deleted below
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

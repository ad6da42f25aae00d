"""The ingest pipeline: verify -> probe -> derive -> sign, as plain functions.

Each step takes a media id and the digest the caller expects, re-reads the world, and stops
(logging why) if it changed. Long work (hashing, ffmpeg) runs outside any database transaction;
the result is written in a short transaction that re-checks the state under a row lock, so a
step that runs twice (Celery redelivery, the reconcile sweep) writes its result once.
Derived objects are keyed by the source digest, the profile and their own digest, so two runs
can never overwrite each other's bytes with different ones.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from sqlmodel import Session, col, select

from archive import events, metrics
from archive.cases import services as cases
from archive.clock import as_utc
from archive.config import Settings
from archive.context import Context
from archive.db import after_commit, session_scope
from archive.errors import NotFound, ObjectMissing, UndecodableMedia
from archive.hashing import digest_file
from archive.i18n import _
from archive.ingest import verify as ingest_verify
from archive.ingest.models import Upload
from archive.media import ffmpeg
from archive.media.models import ORIGINAL_AS_PROXY, Derivative, DerivativeKind, Manifest, Media, MediaState
from archive.models import Outcome
from archive.signing import ALGORITHM, canonical_json

log = logging.getLogger("custody.pipeline")
ACTOR = events.SYSTEM_WORKER
MANIFEST_VERSION = 1


class Step(StrEnum):
    VERIFY = "verify"
    PROBE = "probe"
    DERIVE = "derive"
    SIGN = "sign"


# The state a media item must be in for a step to do anything.
REQUIRED_STATE = {
    Step.VERIFY: MediaState.RECEIVED,
    Step.PROBE: MediaState.VERIFIED,
    Step.DERIVE: MediaState.PROBED,
    Step.SIGN: MediaState.DERIVED,
}
STEP_FOR_STATE = {state: step for step, state in REQUIRED_STATE.items()}
NEXT_STEP = {Step.VERIFY: Step.PROBE, Step.PROBE: Step.DERIVE, Step.DERIVE: Step.SIGN}


class StepSender(Protocol):
    """What :func:`run` needs of a dispatcher (``archive.context.Dispatcher`` is one)."""

    def send(self, step: Step, media_id: str, sha256: str) -> None: ...


__all__ = ["Context", "Step", "StepSender", "run", "stuck"]


def _lock(session: Session, media_id: str) -> Media:
    item = session.exec(select(Media).where(Media.id == media_id).with_for_update()).first()
    if item is None:
        raise NotFound(_("no media {media_id}").format(media_id=media_id))
    return item


def _unchanged(ctx: Context, step: Step, media_id: str, sha256: str) -> Media | None:
    """Re-read the item; None (with a log line) when the step has nothing to do."""
    with Session(ctx.engine, expire_on_commit=False) as session:
        item = session.get(Media, media_id)
    if item is None:
        log.warning("%s %s: no such media item; nothing to do", step, media_id)
        return None
    if item.sha256 != sha256:
        log.warning(
            "%s %s: expected digest %s but the item has %s; stopping", step, media_id, sha256, item.sha256
        )
        return None
    if item.state is not REQUIRED_STATE[step]:
        log.info("%s %s: state is %s, not %s; already done", step, media_id, item.state, REQUIRED_STATE[step])
        return None
    return item


def _advance(
    session: Session, ctx: Context, item: Media, state: MediaState, action: str, **details: Any
) -> None:
    before = item.state
    item.state = state
    item.updated_at = ctx.clock()
    session.add(item)
    events.record(
        session,
        actor=ACTOR,
        action=action,
        subject_type="media",
        subject_id=item.id,
        outcome=Outcome.FAILED if state is MediaState.QUARANTINED else Outcome.OK,
        details={"from": before, "to": state, **details},
        clock=ctx.clock,
    )


def verify(ctx: Context, media_id: str, sha256: str) -> Step | None:
    """Re-read the stored bytes from S3 and compare their SHA-256 with the dock's."""
    item = _unchanged(ctx, Step.VERIFY, media_id, sha256)
    if item is None:
        return None
    bucket = ctx.store.originals
    stored: ingest_verify.StoredDigest | None
    try:
        stored = ingest_verify.digest_stored(
            ctx.engine,
            ctx.store,
            media_id,
            bucket,
            item.object_key,
            checkpoint_bytes=ctx.settings.verify_checkpoint_bytes,
            clock=ctx.clock,
        )
    except ObjectMissing:
        stored = None
    actual = stored.digest if stored else None
    with session_scope(ctx.engine) as session:
        item = _lock(session, media_id)
        if item.state is not MediaState.RECEIVED:
            return None
        ingest_verify.forget(session, media_id)
        read_facts: dict[str, Any] = {}
        if stored is not None:
            read_facts = {"resumed_from": stored.resumed_from}
            upload = session.get(Upload, item.upload_id) if item.upload_id else None
            if upload is not None and upload.parts and "-" in stored.etag:
                # The object is made of exactly the parts the archive acknowledged, or the re-read
                # above (always in full, never trusting ETags) and its SHA-256 decide.
                expected = ingest_verify.multipart_etag(upload.parts)
                read_facts["parts_as_acknowledged"] = stored.etag == expected
        if actual is None or actual.hex != item.sha256 or actual.size != item.size:
            found = "object missing" if actual is None else f"sha256 {actual.hex}, {actual.size} bytes"
            item.state_reason = (
                f"integrity failure: the dock declared sha256 {item.sha256} ({item.size} bytes) "
                f"but storage holds {found}"
            )
            # Loud on purpose: a mismatch means corruption in transit, a faulty dock, or tampering.
            log.error("QUARANTINED media %s: %s", item.id, item.state_reason)
            metrics.QUARANTINES.inc()
            _advance(
                session,
                ctx,
                item,
                MediaState.QUARANTINED,
                "media.verify",
                declared_sha256=item.sha256,
                actual_sha256=actual.hex if actual else None,
            )
            return None
        existing = session.exec(select(Media).where(Media.archived_sha256 == actual.hex)).first()
        if existing is not None:
            item.duplicate_of = existing.id
            item.state_reason = f"same bytes as archived original {existing.id}; not stored twice"
            _advance(session, ctx, item, MediaState.DUPLICATE, "media.verify", sha256=actual.hex)
            events.record(
                session,
                actor=ACTOR,
                action="media.docked_again",
                subject_type="media",
                subject_id=existing.id,
                details={
                    "docking": item.id,
                    "officer": item.officer_badge,
                    "device": item.device_serial,
                    "file_name": item.file_name,
                },
                clock=ctx.clock,
            )
            # An attachment already archived: the cases it was attached to get the original.
            cases.carry_links_to_original(session, item, existing, who=ACTOR, clock=ctx.clock)
            key = item.object_key
            after_commit(session, lambda: ctx.store.delete(bucket, key))
            next_step = None
        else:
            item.archived_sha256 = actual.hex
            _advance(
                session,
                ctx,
                item,
                MediaState.VERIFIED,
                "media.verify",
                sha256=actual.hex,
                size=actual.size,
                **read_facts,
            )
            next_step = Step.PROBE
    return next_step


def _source_url(ctx: Context, item: Media) -> str:
    # ffmpeg reads the original over HTTP range requests: no copy of a 4 GB file on local disk.
    return ctx.store.presigned_get(
        ctx.store.originals, item.object_key, timedelta(seconds=ctx.settings.transcode_time_limit_s + 600)
    )


def probe(ctx: Context, media_id: str, sha256: str) -> Step | None:
    item = _unchanged(ctx, Step.PROBE, media_id, sha256)
    if item is None:
        return None
    facts: dict[str, Any] | None
    reason = ""
    try:
        facts = ffmpeg.probe(_source_url(ctx, item)).to_json()
    except UndecodableMedia as exc:
        facts, reason = None, exc.reason
    with session_scope(ctx.engine) as session:
        item = _lock(session, media_id)
        if item.state is not MediaState.VERIFIED:
            return None
        item.probe = facts
        item.state_reason = f"unplayable: {reason}" if reason else ""
        _advance(
            session, ctx, item, MediaState.PROBED, "media.probe", playable=not reason, reason=reason or None
        )
    return Step.DERIVE


def _store_derived(
    ctx: Context, item: Media, kind: DerivativeKind, profile: str, out: ffmpeg.DerivedFile
) -> Derivative:
    assert out.path is not None
    with out.path.open("rb") as fh:
        dg = digest_file(fh)
    ext = out.path.suffix
    key = f"{kind}/{item.sha256}/{profile}/{dg.hex}{ext}"
    ctx.store.put_file(ctx.store.derived, key, out.path, out.content_type)
    return Derivative(
        media_id=item.id,
        kind=kind,
        profile=profile,
        object_key=key,
        sha256=dg.hex,
        size=dg.size,
        content_type=out.content_type,
        method=out.method,
    )


def proxy_profile(settings: Settings) -> str:
    return f"h264-{settings.proxy_height}p"


def derive(ctx: Context, media_id: str, sha256: str) -> Step | None:
    item = _unchanged(ctx, Step.DERIVE, media_id, sha256)
    if item is None:
        return None
    made: list[Derivative] = []
    reason = ""
    if item.probe is not None and not item.state_reason:
        facts = ffmpeg.ProbeFacts.from_json(item.probe)
        source = _source_url(ctx, item)
        s = ctx.settings
        with (
            tempfile.TemporaryDirectory(prefix="custody-derive-") as tmp,
            ThreadPoolExecutor(1, thread_name_prefix="poster") as side,
        ):
            # The poster (one frame) is made while the proxy is: both read the original. In this
            # thread's context (the language its messages are written in).
            poster_job = side.submit(
                contextvars.copy_context().run,
                ffmpeg.make_poster,
                source,
                facts,
                Path(tmp),
                width=s.poster_width,
            )
            try:
                proxy = ffmpeg.make_proxy(
                    source,
                    facts,
                    Path(tmp),
                    height=s.proxy_height,
                    stall_s=s.ffmpeg_stall_s,
                    timeout_s=s.transcode_time_limit_s,
                )
                if proxy.path is None:
                    # The original is its own proxy: nothing stored twice; the manifest says so.
                    made.append(
                        Derivative(
                            media_id=item.id,
                            kind=DerivativeKind.PROXY,
                            profile=proxy_profile(s),
                            object_key=item.object_key,
                            sha256=item.archived_sha256 or item.sha256,
                            size=item.size,
                            content_type=proxy.content_type,
                            method=ORIGINAL_AS_PROXY,
                        )
                    )
                else:
                    made.append(_store_derived(ctx, item, DerivativeKind.PROXY, proxy_profile(s), proxy))
                    proxy.path.unlink()
                poster = poster_job.result()
                if poster is not None:
                    made.append(
                        _store_derived(ctx, item, DerivativeKind.POSTER, f"jpeg-{s.poster_width}", poster)
                    )
            except UndecodableMedia as exc:
                reason = exc.reason
    with session_scope(ctx.engine) as session:
        item = _lock(session, media_id)
        if item.state is not MediaState.PROBED:
            return None  # another run won; its objects are the recorded ones
        for d in made:
            session.add(d)
        if reason:
            item.state_reason = f"unplayable: {reason}"
        _advance(
            session,
            ctx,
            item,
            MediaState.DERIVED,
            "media.derive",
            derivatives=[
                {"kind": d.kind, "sha256": d.sha256, "size": d.size, "method": d.method} for d in made
            ],
            reason=reason or None,
        )
    return Step.SIGN


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def build_manifest(
    item: Media, derivatives: list[Derivative], key_id: str, signed_at: datetime
) -> dict[str, Any]:
    """The signed statement about one original. Everything a court needs to check the file offline."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "media_id": item.id,
        "original": {
            "sha256": item.archived_sha256,
            "size": item.size,
            "content_type": item.content_type,
            "file_name": item.file_name,
            "source_path": item.source_path,
        },
        "derivatives": [
            {
                "kind": d.kind.value,
                "profile": d.profile,
                "sha256": d.sha256,
                "size": d.size,
                "content_type": d.content_type,
                "method": d.method,
            }
            for d in sorted(derivatives, key=lambda d: (d.kind, d.profile))
        ],
        "probe": item.probe,
        "playable": not item.state_reason,
        "unplayable_reason": item.state_reason.removeprefix("unplayable: ") or None,
        "officer": item.officer_badge,
        "device": item.device_serial,
        "recorded_at_device_clock": _iso(item.recorded_at),
        "received_at": _iso(item.received_at),
        "clock": {"offset_s": item.clock_offset_s, "source": item.clock_source.value},
        "signed_at": _iso(signed_at),
        "algorithm": ALGORITHM,
        "key_id": key_id,
    }


def sign(ctx: Context, media_id: str, sha256: str) -> Step | None:
    item = _unchanged(ctx, Step.SIGN, media_id, sha256)
    if item is None:
        return None
    with session_scope(ctx.engine) as session:
        item = _lock(session, media_id)
        if item.state is not MediaState.DERIVED:
            return None
        derivatives = list(session.exec(select(Derivative).where(Derivative.media_id == media_id)))
        key_id = ctx.keyring.current_key_id()
        body = build_manifest(item, derivatives, key_id, ctx.clock())
        signature = ctx.keyring.sign(body)
        session.add(
            Manifest(
                media_id=item.id,
                version=MANIFEST_VERSION,
                body=body,
                signature=signature.signature_b64,
                key_id=signature.key_id,
            )
        )
        final = MediaState.UNPLAYABLE if item.state_reason else MediaState.READY
        # The manifest's digest goes into the custody log: a manifest replaced later (even by one
        # validly signed with a stolen or newer key) no longer matches what the log recorded.
        _advance(
            session,
            ctx,
            item,
            final,
            "media.sign",
            key_id=signature.key_id,
            manifest_sha256=hashlib.sha256(canonical_json(body)).hexdigest(),
        )
        # Records written before this recording was docked link it now (issue 3's auto-link rule),
        # in the same transaction: the item is never archived without the links its records call for.
        cases.autolink_media(
            session, item, buffer_s=ctx.settings.autolink_buffer_s, who=ACTOR, clock=ctx.clock
        )
    return None


STEPS: dict[Step, Callable[[Context, str, str], Step | None]] = {
    Step.VERIFY: verify,
    Step.PROBE: probe,
    Step.DERIVE: derive,
    Step.SIGN: sign,
}


def run(ctx: Context, step: Step, media_id: str, sha256: str, dispatcher: StepSender | None = None) -> None:
    """Run one step and, after its transaction has committed, hand the item to the next
    (through ``dispatcher``, by default the context's)."""
    next_step = STEPS[step](ctx, media_id, sha256)
    if next_step is not None:
        (dispatcher or ctx.dispatcher).send(next_step, media_id, sha256)


def stuck(
    session: Session, now: datetime, stale_after: timedelta, limit: int = 500
) -> list[tuple[Step, str, str]]:
    """Items in a non-terminal state untouched for ``stale_after``: the reconcile sweep re-drives them."""
    rows = session.exec(
        select(Media)
        .where(Media.state.in_(list(STEP_FOR_STATE)), Media.updated_at < now - stale_after)  # type: ignore[attr-defined]
        .order_by(col(Media.updated_at))
        .limit(limit)
    )
    return [(STEP_FOR_STATE[m.state], m.id, m.sha256) for m in rows]

"""The ingest pipeline: verify -> probe -> derive -> sign, as plain functions.

Each step takes a media id and the digest the caller expects, re-reads the world, and stops
(logging why) if it changed. Long work (hashing, ffmpeg) runs outside any database transaction;
the result is written in a short transaction that re-checks the state under a row lock, so a
step that runs twice (Celery redelivery, the reconcile sweep) writes its result once.
Derived objects are keyed by the source digest, the profile and their own digest, so two runs
can never overwrite each other's bytes with different ones.

Derive beside verify (``Settings.derive_beside_verify``): the verify step probes the object first
and keeps what it found as a draft (:class:`archive.ingest.models.IngestDraft`, tied to the
object's ETag), then starts the derive work while it re-reads the object: for an original that is
its own proxy, ffmpeg's damage check reads the very bytes being hashed (one read); otherwise the
derive step is sent at once and runs on the transcode worker while verify hashes. Nothing of it is
recorded until verification has passed on the same object: the verify transaction then records
probe and derive results (or leaves the derive step to record its own when it finishes later);
a failed verification or a replaced object throws the draft and its derived objects away.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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
from archive.errors import MediaToolFailed, NotFound, ObjectMissing, StorageError, UndecodableMedia
from archive.hashing import digest_file
from archive.i18n import _
from archive.ingest import verify as ingest_verify
from archive.ingest.models import IngestDraft, Upload
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


# --------------------------------------------------------------------------------------------------
# Drafts: probe and derive work done beside verification, recorded only once verified


def _derivative_json(d: Derivative) -> dict[str, Any]:
    return {
        "kind": d.kind.value,
        "profile": d.profile,
        "object_key": d.object_key,
        "sha256": d.sha256,
        "size": d.size,
        "content_type": d.content_type,
        "method": d.method,
    }


def _derivative_of(media_id: str, fields: dict[str, Any]) -> Derivative:
    return Derivative(media_id=media_id, **{**fields, "kind": DerivativeKind(fields["kind"])})


def _discard(session: Session, ctx: Context, made: list[Derivative] | list[dict[str, Any]] | None) -> None:
    """After this transaction commits, delete derived objects that no Derivative row names (work
    thrown away). The original itself (a proxy of method "original") is never touched."""
    keys = sorted(
        {
            d.object_key if isinstance(d, Derivative) else str(d["object_key"])
            for d in made or []
            if (d.method if isinstance(d, Derivative) else d.get("method")) != ORIGINAL_AS_PROXY
        }
    )
    if not keys:
        return
    named = set(session.exec(select(Derivative.object_key).where(col(Derivative.object_key).in_(keys))))
    gone = [k for k in keys if k not in named]
    if not gone:
        return

    def delete() -> None:
        for key in gone:
            try:
                ctx.store.delete(ctx.store.derived, key)
            except (StorageError, ObjectMissing) as exc:  # an orphan left behind, never a wrong record
                log.warning("could not delete discarded derived object %s: %s", key, exc)

    after_commit(session, delete)


def _drop_draft(session: Session, ctx: Context, draft: IngestDraft | None, why: str) -> None:
    if draft is None:
        return
    log.info("media %s: early probe/derive work thrown away (%s)", draft.media_id, why)
    _discard(session, ctx, draft.derivatives)
    session.delete(draft)


def _record_probe(
    session: Session, ctx: Context, item: Media, facts: dict[str, Any] | None, reason: str, **details: Any
) -> None:
    item.probe = facts
    item.state_reason = f"unplayable: {reason}" if reason else ""
    _advance(
        session,
        ctx,
        item,
        MediaState.PROBED,
        "media.probe",
        playable=not reason,
        reason=reason or None,
        **details,
    )


def _record_derived(
    session: Session, ctx: Context, item: Media, made: list[Derivative], reason: str, **details: Any
) -> None:
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
        derivatives=[{"kind": d.kind, "sha256": d.sha256, "size": d.size, "method": d.method} for d in made],
        reason=reason or None,
        **details,
    )


def _probe_source(ctx: Context, item: Media) -> tuple[dict[str, Any] | None, str]:
    try:
        return ffmpeg.probe(_source_url(ctx, item)).to_json(), ""
    except UndecodableMedia as exc:
        return None, exc.reason


HOLD_BYTES = 16 * 1024 * 1024  # head of the verification read held while the probe chooses the plan
HOLD_WAIT_S = 30.0  # the longest the read waits for that choice once HOLD_BYTES are held


class _HeldTee:
    """The verification read's chunks for a consumer not chosen yet: held (at most ``cap`` bytes;
    past that the read waits) until :meth:`decide` names the consumer, which then gets the held
    chunks first and everything after in order; ``decide(None)`` drops them. Decided once."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._cond = threading.Condition()
        self._held: list[bytes] = []
        self._size = 0
        self._sink: Callable[[bytes], None] | None = None
        self.decided = False

    def write(self, chunk: bytes) -> None:
        with self._cond:
            fits = self.decided or self._size + len(chunk) <= self._cap
            if not fits and not self._cond.wait_for(lambda: self.decided, timeout=HOLD_WAIT_S):
                # The probe is taking too long: stop holding (the damage check then reads its own).
                self._held.clear()
                self._size = 0
                self.decided = True
            if not self.decided:
                self._held.append(chunk)
                self._size += len(chunk)
                return
            sink = self._sink
        if sink is not None:
            sink(chunk)

    def decide(self, sink: Callable[[bytes], None] | None) -> None:
        with self._cond:
            if self.decided:
                return
            if sink is not None:
                for chunk in self._held:  # under the lock: the writer's next chunk comes after these
                    sink(chunk)
            self._held.clear()
            self._size = 0
            self._sink = sink
            self.decided = True
            self._cond.notify_all()


class _Beside:
    """The verify step's early work: probe, a draft, and the derive work started beside the read.

    ``start`` (before the read): probe the object (or reuse this object's draft), store the draft;
    then either prepare the one-read damage check (the `original` plan: ffmpeg reads what the hash
    reads, the poster is made in a side thread) or send the derive step, which runs on the
    transcode worker while verify hashes. ``finish`` (after a passing read): the original plan's
    derivatives, or None when the derive step (or a later one) will make them.
    """

    def __init__(self, ctx: Context, item: Media, sender: StepSender) -> None:
        self.ctx, self.item, self.sender = ctx, item, sender
        self.etag: str | None = None
        self.facts: ffmpeg.ProbeFacts | None = None
        self.check: ffmpeg.PipedCheck | None = None
        self.poster: Future[ffmpeg.DerivedFile | None] | None = None
        self._side: ThreadPoolExecutor | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._bg: threading.Thread | None = None
        self.held = _HeldTee(HOLD_BYTES)

    def start(self) -> None:
        """Before the read: the probe and the draft are made in a side thread while the read starts
        (the hash is what the dock waits for). Until the side thread has chosen the plan, the first
        chunks of the read are held (:class:`_HeldTee`): for the original plan they go to ffmpeg
        first, so the pipe still sees every byte from 0; otherwise they are dropped."""
        self._bg = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._prepare_quietly,),
            daemon=True,
            name="early-probe",
        )
        self._bg.start()

    def join(self) -> None:
        """Wait for the side thread's probe and draft (before the verify transaction reads them)."""
        if self._bg is not None:
            self._bg.join()
            self._bg = None

    def _prepare_quietly(self) -> None:
        try:
            # Only an MP4 whose index comes first can feed ffmpeg through a pipe: for anything else
            # (index at the end, another format) stop holding chunks at once (a few 16-byte ranged
            # reads), before the slower probe.
            if ffmpeg.index_at_front(_source_url(self.ctx, self.item), timeout_s=30) is not True:
                self.held.decide(None)
            self._prepare()
        except Exception:
            log.exception("verify %s: early probe failed; probing after verification", self.item.id)
        finally:
            self.held.decide(None)  # no-op once decided: the read never waits on a finished thread

    def _prepare(self) -> None:
        ctx, item = self.ctx, self.item
        try:
            etag = ctx.store.stat(ctx.store.originals, item.object_key).etag
        except ObjectMissing:
            return  # the read finds it missing too, and quarantines
        if not etag:
            return  # nothing to tie a draft to: the steps run one after another
        with Session(ctx.engine, expire_on_commit=False) as session:
            draft = session.get(IngestDraft, item.id)
        if draft is None or draft.object_etag != etag:
            try:
                facts, reason = _probe_source(ctx, item)
            except MediaToolFailed as exc:
                log.warning("verify %s: early probe failed (%s); probing after verification", item.id, exc)
                return
            with session_scope(ctx.engine) as session:
                locked = _lock(session, item.id)
                if locked.state is not MediaState.RECEIVED:
                    return
                _drop_draft(session, ctx, session.get(IngestDraft, item.id), "the object was replaced")
                session.flush()
                draft = IngestDraft(
                    media_id=item.id,
                    object_etag=etag,
                    probe=facts,
                    probe_reason=reason,
                    # An unplayable original has nothing to derive.
                    derivatives=[] if facts is None else None,
                )
                session.add(draft)
        self.etag = etag
        if draft.probe is None or draft.derivatives is not None:
            return
        facts_ = ffmpeg.ProbeFacts.from_json(draft.probe)
        if ffmpeg.proxy_is_original(facts_):
            if not self.held.decided:
                self._start_original(facts_)
                assert self.check is not None
                self.held.decide(self.check.write)
            # else: the index moved to the front since the look (a replaced object): the derive step
            # does it after verification, as for any draft without results.
        else:
            self.sender.send(Step.DERIVE, item.id, item.sha256)

    def _start_original(self, facts: ffmpeg.ProbeFacts) -> None:
        s = self.ctx.settings
        self.facts = facts
        self._tmp = tempfile.TemporaryDirectory(prefix="custody-verify-")
        self._side = ThreadPoolExecutor(1, thread_name_prefix="poster")
        self.poster = self._side.submit(
            contextvars.copy_context().run,
            ffmpeg.make_poster,
            _source_url(self.ctx, self.item),
            facts,
            Path(self._tmp.name),
            width=s.poster_width,
        )
        self.check = ffmpeg.PipedCheck(facts, stall_s=s.ffmpeg_stall_s, timeout_s=s.transcode_time_limit_s)

    @property
    def tee(self) -> Callable[[bytes], None] | None:
        return self.held.write

    def finish(
        self, stored: ingest_verify.StoredDigest
    ) -> tuple[list[Derivative], str, dict[str, Any]] | None:
        """The original plan's derivatives and unplayable reason, once the read has passed."""
        if self.check is None or self.facts is None or self.poster is None or self._tmp is None:
            return None
        s, item = self.ctx.settings, self.item
        clean = self.check.close() and stored.teed and stored.etag == self.etag
        made: list[Derivative] = []
        reason = ""
        try:
            if not clean:
                # Not judged clean from the pipe (damage, a resumed read, a stalled ffmpeg): a ranged
                # read judges it exactly as the derive step would, and its verdict counts.
                ffmpeg.make_proxy(
                    _source_url(self.ctx, item),
                    self.facts,
                    Path(self._tmp.name),
                    height=s.proxy_height,
                    stall_s=s.ffmpeg_stall_s,
                    timeout_s=s.transcode_time_limit_s,
                )
            made.append(_original_as_proxy(self.ctx, item, stored.digest.hex))
            poster = self.poster.result()
            if poster is not None:
                made.append(
                    _store_derived(self.ctx, item, DerivativeKind.POSTER, f"jpeg-{s.poster_width}", poster)
                )
        except UndecodableMedia as exc:
            reason = exc.reason
        except MediaToolFailed as exc:
            log.warning("verify %s: early derive failed (%s); deriving after verification", item.id, exc)
            return None
        # Where the damage check's bytes came from: the read that was hashed, or a read of its own.
        return made, reason, {"damage_check": "verification read" if clean else "ranged read"}

    def close(self) -> None:
        self.held.decide(None)  # a read that stopped early must not keep a writer waiting
        self.join()
        if self.check is not None:
            self.check.close()
        if self._side is not None:
            self._side.shutdown(wait=True, cancel_futures=True)
        if self._tmp is not None:
            self._tmp.cleanup()


def _original_as_proxy(ctx: Context, item: Media, sha256: str) -> Derivative:
    # The original is its own proxy: nothing stored twice; the manifest says so.
    return Derivative(
        media_id=item.id,
        kind=DerivativeKind.PROXY,
        profile=proxy_profile(ctx.settings),
        object_key=item.object_key,
        sha256=sha256,
        size=item.size,
        content_type="video/mp4",
        method=ORIGINAL_AS_PROXY,
    )


def verify(ctx: Context, media_id: str, sha256: str, sender: StepSender | None = None) -> Step | None:
    """Re-read the stored bytes from S3 and compare their SHA-256 with the dock's; with
    ``derive_beside_verify``, probe and derive beside the read (recorded only if it passes)."""
    item = _unchanged(ctx, Step.VERIFY, media_id, sha256)
    if item is None:
        return None
    bucket = ctx.store.originals
    stored: ingest_verify.StoredDigest | None
    beside = _Beside(ctx, item, sender or ctx.dispatcher) if ctx.settings.derive_beside_verify else None
    early: tuple[list[Derivative], str, dict[str, Any]] | None = None
    try:
        if beside is not None:
            beside.start()
        try:
            stored = ingest_verify.digest_stored(
                ctx.engine,
                ctx.store,
                media_id,
                bucket,
                item.object_key,
                checkpoint_bytes=ctx.settings.verify_checkpoint_bytes,
                clock=ctx.clock,
                tee=beside.tee if beside is not None else None,
            )
        except ObjectMissing:
            stored = None
        if beside is not None:
            beside.join()
        passed = stored is not None and (stored.digest.hex, stored.digest.size) == (item.sha256, item.size)
        if beside is not None and stored is not None and passed:
            early = beside.finish(stored)
    finally:
        if beside is not None:
            beside.close()
    actual = stored.digest if stored else None
    with session_scope(ctx.engine) as session:
        item = _lock(session, media_id)
        if item.state is not MediaState.RECEIVED:
            return None  # another run won; its records stand
        ingest_verify.forget(session, media_id)
        draft = session.get(IngestDraft, media_id)
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
            # Nothing derived from unverified bytes survives.
            _drop_draft(session, ctx, draft, "verification failed")
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
            _drop_draft(session, ctx, draft, "a duplicate")
            if early is not None:
                _discard(session, ctx, early[0])
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
            return None
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
        if draft is None or stored is None or draft.object_etag != stored.etag:
            _drop_draft(session, ctx, draft, "the object was replaced since it was probed")
            if early is not None:
                _discard(session, ctx, early[0])
            return Step.PROBE
        # The draft was made on the object just verified: its facts are now facts.
        beside_facts = {"early": True, "object_etag": draft.object_etag}
        _record_probe(session, ctx, item, draft.probe, draft.probe_reason, **beside_facts)
        check: dict[str, Any] = {}
        if early is not None:
            made, reason, check = early
        elif draft.derivatives is not None:
            made, reason = [_derivative_of(item.id, d) for d in draft.derivatives], draft.derive_reason
        elif draft.probe is not None and ffmpeg.proxy_is_original(ffmpeg.ProbeFacts.from_json(draft.probe)):
            # The one-read check did not finish here (ffmpeg failed or stalled): the derive step does it.
            session.delete(draft)
            return Step.DERIVE
        else:
            # The derive step sent at the start is still at work: it records when it finishes (the
            # draft stays, now confirmed); the reconcile sweep re-drives it if its message was lost.
            return None
        _record_derived(session, ctx, item, made, reason, **beside_facts, **check)
        session.delete(draft)
    return Step.SIGN


def _source_url(ctx: Context, item: Media) -> str:
    # ffmpeg reads the original over HTTP range requests: no copy of a 4 GB file on local disk.
    return ctx.store.presigned_get(
        ctx.store.originals, item.object_key, timedelta(seconds=ctx.settings.transcode_time_limit_s + 600)
    )


def probe(ctx: Context, media_id: str, sha256: str, sender: StepSender | None = None) -> Step | None:
    item = _unchanged(ctx, Step.PROBE, media_id, sha256)
    if item is None:
        return None
    facts, reason = _probe_source(ctx, item)
    with session_scope(ctx.engine) as session:
        item = _lock(session, media_id)
        if item.state is not MediaState.VERIFIED:
            return None
        _record_probe(session, ctx, item, facts, reason)
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


def _make_derivatives(ctx: Context, item: Media, facts: ffmpeg.ProbeFacts) -> tuple[list[Derivative], str]:
    """Proxy and poster of the original (stored in the derived bucket), and the unplayable reason."""
    made: list[Derivative] = []
    reason = ""
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
                made.append(_original_as_proxy(ctx, item, item.archived_sha256 or item.sha256))
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
    return made, reason


def _etag(ctx: Context, item: Media) -> str | None:
    try:
        return ctx.store.stat(ctx.store.originals, item.object_key).etag
    except ObjectMissing:
        return None


def _derive_early(ctx: Context, item: Media) -> Step | None:
    """The derive step sent at completion (the item still ``received``): derive from the object the
    draft was probed on, then hand the result to the draft (verify records it) or, if verify has
    passed on that object meanwhile, record it; anything else throws the work away."""
    with Session(ctx.engine, expire_on_commit=False) as session:
        draft = session.get(IngestDraft, item.id)
    if draft is None or draft.probe is None or draft.derivatives is not None:
        log.info("derive %s: no early work to do (draft %s)", item.id, "done" if draft else "missing")
        return None
    etag = draft.object_etag
    if _etag(ctx, item) != etag:
        log.info("derive %s: the object changed since it was probed; verify decides", item.id)
        return None
    made, reason = _make_derivatives(ctx, item, ffmpeg.ProbeFacts.from_json(draft.probe))
    after = _etag(ctx, item)
    with session_scope(ctx.engine) as session:
        item = _lock(session, item.id)
        current = session.get(IngestDraft, item.id)
        same = current is not None and current.object_etag == etag == after
        if same and current is not None and item.state is MediaState.RECEIVED:
            current.derivatives = [_derivative_json(d) for d in made]
            current.derive_reason = reason
            current.updated_at = ctx.clock()
            session.add(current)
            return None  # verify records it once it has passed
        if same and current is not None and item.state is MediaState.PROBED:
            _record_derived(session, ctx, item, made, reason, early=True, object_etag=etag)
            session.delete(current)
            return Step.SIGN
        log.info("derive %s: early work thrown away (state %s, draft %s)", item.id, item.state, bool(current))
        _discard(session, ctx, made)
    return None


def derive(ctx: Context, media_id: str, sha256: str, sender: StepSender | None = None) -> Step | None:
    with Session(ctx.engine, expire_on_commit=False) as session:
        found = session.get(Media, media_id)
    if found is not None and found.sha256 == sha256 and found.state is MediaState.RECEIVED:
        return _derive_early(ctx, found)
    item = _unchanged(ctx, Step.DERIVE, media_id, sha256)
    if item is None:
        return None
    made: list[Derivative] = []
    reason = ""
    if item.probe is not None and not item.state_reason:
        made, reason = _make_derivatives(ctx, item, ffmpeg.ProbeFacts.from_json(item.probe))
    with session_scope(ctx.engine) as session:
        item = _lock(session, media_id)
        if item.state is not MediaState.PROBED:
            return None  # another run won; its objects are the recorded ones
        draft = session.get(IngestDraft, media_id)
        if draft is not None:
            session.delete(draft)
            session.flush()
            _discard(
                session,
                ctx,
                [d for d in draft.derivatives or [] if d["object_key"] not in {m.object_key for m in made}],
            )
        _record_derived(session, ctx, item, made, reason)
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


def sign(ctx: Context, media_id: str, sha256: str, sender: StepSender | None = None) -> Step | None:
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


STEPS: dict[Step, Callable[[Context, str, str, StepSender | None], Step | None]] = {
    Step.VERIFY: verify,
    Step.PROBE: probe,
    Step.DERIVE: derive,
    Step.SIGN: sign,
}


def run(ctx: Context, step: Step, media_id: str, sha256: str, dispatcher: StepSender | None = None) -> None:
    """Run one step and, after its transaction has committed, hand the item to the next
    (through ``dispatcher``, by default the context's)."""
    sender = dispatcher or ctx.dispatcher
    next_step = STEPS[step](ctx, media_id, sha256, sender)
    if next_step is not None:
        sender.send(next_step, media_id, sha256)


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

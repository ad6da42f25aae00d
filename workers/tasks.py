"""Celery tasks: open collaborators, call archive.ingest.pipeline, nothing more."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta
from typing import Any

import redis
from celery.signals import worker_process_init, worker_ready, worker_shutdown
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlmodel import Session

from archive import metrics
from archive.audit import services as audit
from archive.config import get_settings
from archive.context import Context
from archive.db import session_scope
from archive.errors import MediaToolFailed, StorageError
from archive.ingest import housekeeping, pipeline
from archive.ledger import publish
from archive.ledger import services as ledger
from archive.oversight import check as oversight
from retention import services as retention
from workers.celery_app import CeleryDispatcher, app

log = logging.getLogger("custody.tasks")
HEARTBEAT_KEY = "custody:worker-heartbeat:"

_ctx: Context | None = None


def context() -> Context:
    """This process's collaborators: built once per worker process, after fork (never shared across
    processes); lazily for a process that skipped ``worker_process_init`` (the solo pool)."""
    global _ctx
    if _ctx is None:
        _ctx = Context.build(dispatcher=CeleryDispatcher())
    return _ctx


@worker_process_init.connect
def _build_after_fork(**_: Any) -> None:
    global _ctx
    _ctx = Context.build(dispatcher=CeleryDispatcher())


# Retry only what may pass: storage hiccups, an ffmpeg that stalled or crashed, and the
# unique-digest race of two identical uploads verified at once.
RETRYABLE = (StorageError, MediaToolFailed, DBIntegrityError)


def _task(step: pipeline.Step) -> Any:
    @app.task(
        name=f"custody.{step}",
        bind=True,
        autoretry_for=RETRYABLE,
        retry_backoff=5,
        retry_backoff_max=300,
        max_retries=8,
    )
    def run(self: Any, media_id: str, sha256: str) -> None:
        pipeline.run(context(), step, media_id, sha256)

    return run


verify = _task(pipeline.Step.VERIFY)
probe = _task(pipeline.Step.PROBE)
derive = _task(pipeline.Step.DERIVE)
sign = _task(pipeline.Step.SIGN)


@app.task(name="custody.reconcile")
def reconcile() -> int:
    """Re-drive items stuck in a non-terminal state (lost message, crash between commit and send)."""
    ctx = context()
    with Session(ctx.engine) as session:
        items = pipeline.stuck(session, ctx.clock(), timedelta(seconds=ctx.settings.reconcile_stale_after_s))
    for step, media_id, sha in items:
        log.warning("reconcile: re-driving %s for media %s", step, media_id)
        ctx.dispatcher.send(step, media_id, sha)
    return len(items)


@app.task(name="custody.upload_sweep")
def upload_sweep() -> int:
    """Abort S3 multipart uploads abandoned for longer than the resume window; remove their tails."""
    ctx = context()
    report = housekeeping.sweep_abandoned_uploads(
        ctx.engine, ctx.store, window=timedelta(seconds=ctx.settings.upload_resume_window_s), clock=ctx.clock
    )
    return len(report.abandoned) + len(report.orphan_multiparts)


@app.task(name="custody.checkpoint")
def checkpoint() -> int:
    """Sequence committed events into the Merkle log and sign a checkpoint if it grew."""
    ctx = context()
    with session_scope(ctx.engine) as session:
        cp = ledger.sign_checkpoint(session, ctx.keyring, clock=ctx.clock, force=False)
    # after commit: only committed checkpoints leave the database
    with Session(ctx.engine) as session:
        publish.publish(session, ctx.store)
    return cp.tree_size


@app.task(name="custody.fixity")
def fixity() -> int:
    """One slice of the fixity cycle (see archive.audit.services.fixity_sweep)."""
    ctx = context()
    s = ctx.settings
    report = audit.fixity_sweep(
        ctx.engine,
        ctx.store,
        ctx.keyring,
        interval_s=s.fixity_interval_s,
        cycle_s=s.fixity_cycle_s,
        rate_bytes_per_s=s.fixity_rate_bytes_per_s,
        clock=ctx.clock,
    )
    return len(report.discrepancies)


@app.task(name="custody.retention_classify")
def retention_classify() -> int:
    """First classification of new arrivals, and reclassification after case links changed."""
    ctx = context()
    return retention.classify_pending(ctx.engine, ctx.store) + retention.refresh_changed(
        ctx.engine, ctx.store
    )


@app.task(name="custody.retention_reclassify")
def retention_reclassify() -> int:
    ctx = context()
    return retention.reclassify_all(ctx.engine, ctx.store)


@app.task(name="custody.retention_sweep", acks_late=True)
def retention_sweep() -> int:
    """Daily: delete what expired and nothing protected (re-checked in the lock), with tombstones."""
    ctx = context()
    result = retention.sweep(ctx.engine, ctx.store, ctx.keyring, batch=ctx.settings.retention_sweep_batch)
    log.info("retention sweep: %d deleted, %d kept on re-check", len(result.deleted), len(result.kept))
    metrics.SWEEP_DELETED.inc(len(result.deleted))
    metrics.SWEEP_REFUSED.inc(len(result.kept))
    return len(result.deleted)


@app.task(name="custody.oversight_check", acks_late=True)
def oversight_check() -> int:
    """The early-warning check (archive.oversight.check): one run, its warnings and statistics.
    Running twice only adds a run; the API shows the latest finished one."""
    ctx = context()
    with session_scope(ctx.engine) as session:
        run = oversight.run_check(
            session, unlinked_days=ctx.settings.unlinked_warning_days, timezone=ctx.settings.timezone
        )
    log.info("oversight check %s: %s", run.id, run.counts)
    return sum(run.counts.values())


# Liveness for /healthz: the worker's main process refreshes a key with a short TTL.
_stop = threading.Event()


def _heartbeat_loop(name: str) -> None:
    s = get_settings()
    client = redis.Redis.from_url(s.redis_url)
    while not _stop.is_set():
        try:
            client.set(HEARTBEAT_KEY + name, "1", ex=s.worker_heartbeat_ttl_s)
        except redis.RedisError as exc:
            log.warning("heartbeat failed: %s", exc)
        _stop.wait(s.worker_heartbeat_ttl_s / 3)
    client.delete(HEARTBEAT_KEY + name)


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    name = getattr(sender, "hostname", None) or f"{socket.gethostname()}-{os.getpid()}"
    threading.Thread(target=_heartbeat_loop, args=(name,), daemon=True, name="custody-heartbeat").start()


@worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    _stop.set()

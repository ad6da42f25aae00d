"""Publicity tasks: a few lines each around archive.publicity."""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session

from archive.db import session_scope
from archive.publicity import decisions, report, webhooks
from workers.celery_app import CeleryDispatcher, app
from workers.publicity_schedule import DELIVER, DUE_WARN, RECONCILE, REPORT_DRAFT, REPORT_WARN
from workers.tasks import context

log = logging.getLogger("custody.tasks.publicity")
dispatcher = CeleryDispatcher()


@app.task(name=DELIVER, bind=True, acks_late=True, max_retries=None, time_limit=120, soft_time_limit=100)
def deliver(self: Any, delivery_id: str) -> str:
    """One attempt; on failure the retry is a new message after the backoff (the attempt is committed
    first). Idempotent: a delivered or failed row is left alone, and a row another worker holds is
    skipped."""
    ctx = context()
    with session_scope(ctx.engine) as session:
        result = webhooks.attempt(session, delivery_id, settings=ctx.settings, clock=ctx.clock)
    if result.retry_in is not None:
        log.warning("delivery %s failed; retry in %.0f s", delivery_id, result.retry_in)
        raise self.retry(countdown=result.retry_in)
    return str(result.state)


@app.task(name=RECONCILE)
def reconcile() -> int:
    """Re-send pending deliveries whose task was lost (well past their next attempt time)."""
    ctx = context()
    grace = max(ctx.settings.publicity_webhook_backoff_s, 60.0)
    with Session(ctx.engine) as session:
        ids = webhooks.due_for_resend(session, ctx.clock(), grace)
    for delivery_id in ids:
        log.warning("publicity reconcile: re-sending delivery %s", delivery_id)
        dispatcher.send_task(DELIVER, delivery_id)
    return len(ids)


@app.task(name=REPORT_DRAFT)
def report_draft() -> int | None:
    ctx = context()
    with session_scope(ctx.engine) as session:
        row = report.draft_if_missing(session, ctx.keyring, clock=ctx.clock)
    if row is not None:
        log.info("drafted the %d enforcement report (version %d)", row.year, row.version)
    return row.year if row is not None else None


@app.task(name=REPORT_WARN)
def report_warn() -> str | None:
    ctx = context()
    with session_scope(ctx.engine) as session:
        message = report.warn_if_unpublished(session, clock=ctx.clock)
    if message:
        log.warning("%s", message)
    return message


def _noted(note: str) -> str:
    """The suffix " (provisional: ...)" after a deadline counted on a year the calendar does not know."""
    return f" ({note})" if note else ""


@app.task(name=DUE_WARN)
def due_warn() -> int:
    """Warn (worker log) about decisions past their publication deadline and those due soon."""
    ctx = context()
    with Session(ctx.engine) as session:
        result = decisions.due_list(session)
    for item in result.overdue:
        log.warning(
            "publicity overdue: %s decision of case %s, decided %s, deadline %s%s (%d working days late)",
            item.category,
            item.case_number,
            item.decided_on,
            item.deadline,
            _noted(item.deadline_note),
            -item.working_days_left,
        )
    for item in result.due_soon:
        log.info(
            "publicity due soon: case %s, deadline %s%s",
            item.case_number,
            item.deadline,
            _noted(item.deadline_note),
        )
    return len(result.overdue)

"""Pushing publications and withdrawals to the external publicity platform ("即时推送", seed 003).

Each push is a :class:`Delivery` row written in the transaction that publishes (an outbox): the API
sends its task after the commit, and a scheduled reconcile re-sends pending rows whose task was lost.
An attempt POSTs the JSON body with

    X-Custody-Event:      decision.published | decision.updated | decision.withdrawn | ...
    X-Custody-Delivery:   the delivery id (the same on every retry: the platform de-duplicates by it)
    X-Custody-Timestamp:  Unix seconds
    X-Custody-Signature:  sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

so the platform can check who sent it and refuse a replay of an old body. A 2xx answer delivers;
anything else is recorded as an attempt and retried with exponential backoff until
``publicity_webhook_max_attempts``, after which the delivery is marked failed (and logged).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, authorize
from archive.accounts.models import User
from archive.clock import Clock, as_utc, utcnow
from archive.config import Settings, get_settings
from archive.context import Dispatcher
from archive.db import after_commit
from archive.errors import NotFound
from archive.i18n import _
from archive.models import Outcome
from archive.publicity.errors import WrongState
from archive.publicity.models import Delivery, DeliveryAttempt, DeliveryState
from archive.publicity.services import log

DELIVER_TASK = "custody.publicity_deliver"  # the Celery task (workers/publicity.py) that makes an attempt
SIGNATURE_HEADER = "X-Custody-Signature"
TIMESTAMP_HEADER = "X-Custody-Timestamp"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does (used by the tests' receiver and shown in docs/publicity.md)."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def body_bytes(delivery: Delivery) -> bytes:
    document = {"event": delivery.event, "delivery": delivery.id, "data": delivery.payload}
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def enqueue(
    session: Session,
    event: str,
    subject: str,
    payload: dict[str, Any],
    *,
    settings: Settings | None = None,
    dispatcher: Dispatcher | None = None,
    clock: Clock = utcnow,
) -> Delivery | None:
    """The outbox row for one push, or None when no platform is configured. With a dispatcher, its
    task is sent once the transaction commits (without one, the reconcile beat sends it)."""
    s = settings or get_settings()
    if not s.publicity_webhook_url:
        return None
    now = clock()
    delivery = Delivery(
        event=event,
        subject=subject,
        url=s.publicity_webhook_url,
        payload=payload,
        max_attempts=s.publicity_webhook_max_attempts,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(delivery)
    session.flush()
    _send_after_commit(session, dispatcher, delivery.id)
    return delivery


def _send_after_commit(session: Session, dispatcher: Dispatcher | None, delivery_id: str) -> None:
    if dispatcher is not None:
        after_commit(session, lambda: dispatcher.send_task(DELIVER_TASK, delivery_id))


class Poster(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        """POST and return the HTTP status; raise ``OSError``/``httpx.HTTPError`` when no answer came."""


class HttpxPoster:
    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        # No redirects: a signed body goes only where the operator pointed it.
        r = httpx.post(url, content=body, headers=headers, timeout=timeout, follow_redirects=False)
        return r.status_code


def backoff(attempt: int, settings: Settings) -> float:
    """Seconds before attempt ``attempt + 1``: base x 2^(attempt-1), capped."""
    delay = settings.publicity_webhook_backoff_s * 2 ** max(attempt - 1, 0)
    return float(min(delay, settings.publicity_webhook_backoff_max_s))


@dataclass(frozen=True)
class AttemptResult:
    state: DeliveryState | None  # None: another worker holds the row; nothing was done
    retry_in: float | None = None


def attempt(
    session: Session,
    delivery_id: str,
    *,
    poster: Poster | None = None,
    settings: Settings | None = None,
    clock: Clock = utcnow,
) -> AttemptResult:
    """One delivery attempt, recorded. Idempotent: a delivered or failed row is left alone."""
    s = settings or get_settings()
    row = session.exec(
        select(Delivery).where(Delivery.id == delivery_id).with_for_update(skip_locked=True)
    ).first()
    if row is None:
        if session.get(Delivery, delivery_id) is None:
            raise NotFound(_("no delivery {id}").format(id=delivery_id))
        return AttemptResult(None)
    if row.state is not DeliveryState.PENDING:
        return AttemptResult(row.state)
    number = row.attempts + 1
    body = body_bytes(row)
    stamp = str(int(clock().timestamp()))
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "custody-publicity/1",
        "X-Custody-Event": row.event,
        "X-Custody-Delivery": row.id,
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: signature(s.publicity_webhook_secret.get_secret_value(), stamp, body),
    }
    status: int | None = None
    error = ""
    started = time.monotonic()
    try:
        status = (poster or HttpxPoster()).post(row.url, body, headers, s.publicity_webhook_timeout_s)
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except (OSError, httpx.HTTPError) as exc:
        error = f"{exc.__class__.__name__}: {exc}"[:2000]
    elapsed = int((time.monotonic() - started) * 1000)
    now = clock()
    session.add(
        DeliveryAttempt(
            delivery_id=row.id, attempt=number, at=now, status_code=status, error=error, duration_ms=elapsed
        )
    )
    row.attempts, row.last_status, row.last_error = number, status, error
    retry_in: float | None = None
    if not error:
        row.state, row.delivered_at = DeliveryState.DELIVERED, now
        log(
            session,
            "system:publicity",
            "publicity.webhook.delivered",
            "delivery",
            row.id,
            clock=clock,
            event=row.event,
            subject=row.subject,
            attempts=number,
            status=status,
        )
    elif number >= row.max_attempts:
        row.state, row.failed_at = DeliveryState.FAILED, now
        events.record(
            session,
            actor="system:publicity",
            action="publicity.webhook.failed",
            subject_type="delivery",
            subject_id=row.id,
            outcome=Outcome.FAILED,
            details={"event": row.event, "subject": row.subject, "attempts": number, "error": error},
            clock=clock,
        )
    else:
        retry_in = backoff(number, s)
        row.next_attempt_at = now + timedelta(seconds=retry_in)
    session.add(row)
    session.flush()
    return AttemptResult(row.state, retry_in)


def due_for_resend(session: Session, now: datetime, grace_s: float, limit: int = 200) -> list[str]:
    """Pending deliveries whose next attempt is more than ``grace_s`` late: their task was lost
    (the API died between commit and send, or a worker lost the retry)."""
    cutoff = now - timedelta(seconds=grace_s)
    rows = session.exec(
        select(Delivery.id)
        .where(Delivery.state == DeliveryState.PENDING, col(Delivery.next_attempt_at) <= cutoff)
        .order_by(col(Delivery.next_attempt_at))
        .limit(limit)
    ).all()
    return list(rows)


def listing(
    session: Session, user: User, *, state: DeliveryState | None = None, limit: int = 100, offset: int = 0
) -> list[Delivery]:
    authorize(user, Permission.PUBLICITY_READ)
    stmt = select(Delivery)
    if state is not None:
        stmt = stmt.where(Delivery.state == state)
    return list(session.exec(stmt.order_by(col(Delivery.created_at).desc()).offset(offset).limit(limit)))


def attempts_of(session: Session, user: User, delivery_id: str) -> list[DeliveryAttempt]:
    authorize(user, Permission.PUBLICITY_READ)
    return list(
        session.exec(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(col(DeliveryAttempt.attempt))
        )
    )


def retry_failed(
    session: Session,
    user: User,
    delivery_id: str,
    *,
    dispatcher: Dispatcher | None = None,
    addr: str = "",
    clock: Clock = utcnow,
) -> Delivery:
    """Put a failed delivery back in the queue (the platform was down for longer than the retries)."""
    authorize(user, Permission.PUBLISH)
    row = session.get(Delivery, delivery_id)
    if row is None:
        raise NotFound(_("no delivery {id}").format(id=delivery_id[:40]))
    if row.state is not DeliveryState.FAILED:
        raise WrongState(_("delivery {id} is {state}, not failed").format(id=row.id, state=row.state))
    row.state, row.failed_at, row.next_attempt_at = DeliveryState.PENDING, None, clock()
    row.max_attempts = row.attempts + get_settings().publicity_webhook_max_attempts
    session.add(row)
    session.flush()
    log(
        session,
        user,
        "publicity.webhook.retry",
        "delivery",
        row.id,
        addr=addr,
        clock=clock,
        event=row.event,
        subject=row.subject,
    )
    _send_after_commit(session, dispatcher, row.id)
    return row


def next_attempt_in(row: Delivery, now: datetime) -> float:
    return max((as_utc(row.next_attempt_at) - now).total_seconds(), 0.0)

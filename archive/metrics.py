"""What an operator watches (Prometheus), from every process of one host.

Counters and histograms are kept by the process where the thing happens (API: bytes and files docked,
upload durations; workers: step durations, failures, retries, quarantines, sweep results). With
``PROMETHEUS_MULTIPROC_DIR`` set (``custody serve`` sets it; it must be set before prometheus_client
is first imported) each process writes its values to files there and ``/metrics`` adds them up
(prometheus-client's multiprocess mode, for uvicorn and Celery's forked pools alike).

Gauges of the archive's state (media per state, checkpoint age, the last verification's
discrepancies, retention results) are read from the database when scraped (``StateCollector``), so
they are right whichever process changed the state, and after restarts.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive.clock import Clock, as_utc, utcnow
from archive.ledger.models import Checkpoint
from archive.media.models import Media, MediaState
from archive.models import Event

# Multiprocess mode writes each process's values into this folder: make sure it exists (a worker
# may start before the API on a fresh host).
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

DURATION_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600)

DOCKED_BYTES = Counter("custody_docked_bytes", "Bytes of originals received complete through the API")
DOCKED_FILES = Counter("custody_docked_files", "Originals received complete through the API")
UPLOAD_SECONDS = Histogram(
    "custody_upload_duration_seconds",
    "From an upload's creation to its last byte stored (tus), per original",
    buckets=DURATION_BUCKETS,
)
TASK_SECONDS = Histogram(
    "custody_task_duration_seconds",
    "Run time of worker tasks (verify, probe, derive, sign, checkpoint, fixity, sweeps)",
    ["task"],
    buckets=DURATION_BUCKETS,
)
TASK_FAILURES = Counter("custody_task_failures", "Worker tasks that raised", ["task"])
TASK_RETRIES = Counter("custody_task_retries", "Worker tasks scheduled for a retry", ["task"])
QUARANTINES = Counter(
    "custody_quarantines", "Originals quarantined: the bytes in storage do not hash to the declared SHA-256"
)
SWEEP_DELETED = Counter("custody_retention_deleted", "Originals deleted by the retention sweep")
SWEEP_REFUSED = Counter(
    "custody_retention_refused", "Sweep candidates kept on the re-check inside the lock (a flag or hold won)"
)

VERIFY_ACTIONS = ("audit.verify", "audit.fixity")
# The Celery queues (workers.celery_app) and the message header the senders stamp with the time sent
# (workers.metrics), read here from Redis without importing the task queue.
QUEUES = ("ingest", "transcode")
SENT_AT = "custody_sent_at"
HEARTBEAT_PREFIX = "custody:worker-heartbeat:"


class StateCollector(Collector):
    """Gauges read from the database at scrape time."""

    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[Any]:
        now = as_utc(self.clock())
        with Session(self.engine) as s:
            by_state = dict(s.exec(select(Media.state, func.count()).group_by(col(Media.state))).all())
            last_cp = s.exec(select(Checkpoint).order_by(col(Checkpoint.id).desc()).limit(1)).first()
            last_verify = s.exec(
                select(Event)
                .where(col(Event.action).in_(VERIFY_ACTIONS))
                .order_by(col(Event.id).desc())
                .limit(1)
            ).first()
        media = GaugeMetricFamily("custody_media", "Media items in each state", labels=["state"])
        for state in MediaState:
            media.add_metric([state.value], float(by_state.get(state, 0)))
        yield media
        age = GaugeMetricFamily(
            "custody_checkpoint_age_seconds", "Seconds since the newest signed checkpoint of the custody log"
        )
        if last_cp is not None:
            age.add_metric([], _seconds(now, last_cp.signed_at))
        yield age
        disc = GaugeMetricFamily(
            "custody_verify_discrepancies", "Discrepancies found by the last verification (verify or fixity)"
        )
        vage = GaugeMetricFamily("custody_verify_age_seconds", "Seconds since the last verification")
        if last_verify is not None:
            details = last_verify.details or {}
            found = details.get("discrepancy_count", len(details.get("discrepancies", [])))
            disc.add_metric([], float(found))
            vage.add_metric([], _seconds(now, last_verify.at))
        yield disc
        yield vage
        yield from _calendar(self.engine, self.clock)


def _calendar(engine: Engine, clock: Clock) -> Iterator[Any]:
    """Years the working-day calendar should know by now and does not, and the deadlines counted
    provisionally meanwhile (docs/legal-review.md: a year the calendar does not know)."""
    from archive.workdays.provisional import provisional_items
    from archive.workdays.services import calendar_warnings

    with Session(engine) as s:
        missing = calendar_warnings(s, clock=clock)
        waiting = provisional_items(s)
    years = GaugeMetricFamily(
        "custody_calendar_missing_years",
        "Years the working-day calendar should know by today and does not (custody calendar set)",
    )
    years.add_metric([], float(len(missing)))
    yield years
    provisional = GaugeMetricFamily(
        "custody_provisional_deadlines",
        "Pending legal reviews and unpublished decisions whose deadline is provisional",
        labels=["kind"],
    )
    for kind in ("legal-review", "publicity"):
        provisional.add_metric([kind], float(sum(1 for i in waiting if i.kind == kind)))
    yield provisional


def _seconds(now: datetime, then: datetime) -> float:
    return max(0.0, (now - as_utc(then)).total_seconds())


class QueueCollector(Collector):
    """Depth and oldest task age of each Celery queue (Redis lists: kombu LPUSHes, workers take
    from the right, so the oldest message is the last element), and the workers alive."""

    def __init__(self, client: redis.Redis, queues: tuple[str, ...] = QUEUES) -> None:
        self.client = client
        self.queues = queues

    def collect(self) -> Iterator[Any]:
        depth = GaugeMetricFamily("custody_queue_depth", "Tasks waiting in each queue", labels=["queue"])
        age = GaugeMetricFamily(
            "custody_queue_oldest_age_seconds",
            "Age of the oldest task waiting in each queue",
            labels=["queue"],
        )
        now = time.time()
        for q in self.queues:
            depth.add_metric([q], float(self.client.llen(q)))
            oldest = self.client.lindex(q, -1)
            waited = 0.0
            if oldest:
                try:
                    sent = float(json.loads(oldest).get("headers", {}).get(SENT_AT) or now)
                except (ValueError, TypeError, AttributeError):
                    sent = now
                waited = max(0.0, now - sent)
            age.add_metric([q], waited)
        yield depth
        yield age
        alive = GaugeMetricFamily("custody_workers_alive", "Worker processes with a fresh heartbeat")
        alive.add_metric([], float(sum(1 for _ in self.client.scan_iter(HEARTBEAT_PREFIX + "*"))))
        yield alive

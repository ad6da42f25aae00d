"""The Celery application. Configured from Settings when first used, never at import time
with live connections: each worker process builds its own clients after fork."""

from __future__ import annotations

from datetime import timedelta

from celery import Celery
from celery.schedules import crontab
from kombu.entity import Queue

from archive.config import get_settings
from workers.publicity_schedule import PUBLICITY_QUEUE, PUBLICITY_ROUTES, publicity_beat

INGEST_QUEUE = "ingest"
TRANSCODE_QUEUE = "transcode"


def sweep_schedule(expression: str) -> crontab:
    """A five-field crontab ("30 2 * * *": 02:30 UTC daily). Parsed field by field so that a
    wrong expression fails at start, not silently at some odd hour (see docs/operations.md)."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"retention_sweep_cron needs 5 fields (minute hour day month weekday): {expression!r}"
        )
    minute, hour, day, month, weekday = fields
    return crontab(minute=minute, hour=hour, day_of_month=day, month_of_year=month, day_of_week=weekday)


def make_celery() -> Celery:
    s = get_settings()
    app = Celery("custody", broker=s.redis_url, backend=None, include=["workers.tasks", "workers.publicity"])
    app.conf.update(
        task_queues=[Queue(INGEST_QUEUE), Queue(TRANSCODE_QUEUE), Queue(PUBLICITY_QUEUE)],
        task_default_queue=INGEST_QUEUE,
        # The fixity sweep reads for a long time (rate-limited): keep it off the ingest queue.
        task_routes={
            "custody.derive": {"queue": TRANSCODE_QUEUE},
            "custody.fixity": {"queue": TRANSCODE_QUEUE},
            # Pushes to the publicity platform wait on someone else's server: never behind ingest.
            **PUBLICITY_ROUTES,
        },
        # Long tasks: acknowledge only when done, so a killed worker's task is delivered again;
        # every task is idempotent (archive.ingest.pipeline), so running twice writes once.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Redis redelivers an unacknowledged task after the visibility timeout: it must exceed
        # the longest task, or a long transcode runs twice (celery/celery#5935).
        # Redis hands an unacknowledged task (its worker died) to another worker once the
        # visibility timeout passes; sweep for those every 10 s instead of kombu's ~100 s.
        broker_transport_options={
            "visibility_timeout": s.visibility_timeout_s,
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        task_time_limit=s.transcode_time_limit_s,
        task_soft_time_limit=s.transcode_time_limit_s - 60,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "reconcile-stuck-media": {
                "task": "custody.reconcile",
                "schedule": timedelta(seconds=s.reconcile_interval_s),
            },
            # Uploads abandoned longer than the resume window: abort their S3 multipart uploads.
            "upload-sweep": {
                "task": "custody.upload_sweep",
                "schedule": timedelta(seconds=s.upload_sweep_interval_s),
            },
            # Custody log: sequence new events and sign a checkpoint when the log grew.
            "sign-log-checkpoint": {
                "task": "custody.checkpoint",
                "schedule": timedelta(seconds=s.checkpoint_interval_s),
            },
            # Fixity: a slice of the archive re-hashed per run, all of it once per fixity_cycle_s.
            "fixity-sweep": {
                "task": "custody.fixity",
                "schedule": timedelta(seconds=s.fixity_interval_s),
            },
            # Retention: classify new arrivals and items whose case links changed; sweep daily.
            "retention-classify": {
                "task": "custody.retention_classify",
                "schedule": timedelta(seconds=s.retention_classify_interval_s),
            },
            "retention-sweep": {
                "task": "custody.retention_sweep",
                "schedule": sweep_schedule(s.retention_sweep_cron),
            },
            **publicity_beat(s),
            # Early warning over the whole archive (issue 13): daily, results read by the API.
            "oversight-check": {
                "task": "custody.oversight_check",
                "schedule": sweep_schedule(s.oversight_check_cron),
            },
        },
        timezone="UTC",
    )
    return app


app = make_celery()


# Signal handlers: task metrics, log context, queue age (metrics); one beat in the installation, a leader
# lease in Redis (beat_leader).
from workers import beat_leader, metrics  # noqa: E402, F401


class CeleryDispatcher:
    """``archive.context.Dispatcher`` over Celery: sends pipeline steps and tasks by name; used by the
    API and by the tasks themselves. Call it only after the transaction that made the item has
    committed (``archive.db.after_commit``)."""

    def send(self, step: str, media_id: str, sha256: str) -> None:
        app.send_task(f"custody.{step}", args=[media_id, sha256])

    def send_task(self, name: str, *args: str) -> None:
        app.send_task(name, args=list(args))

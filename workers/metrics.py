"""Worker-side metrics and log context (Celery signals). Imported by workers.celery_app, so every
process that sends or runs tasks connects these handlers."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    before_task_publish,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    worker_process_shutdown,
    worker_ready,
)

from archive import logs, metrics
from archive.config import get_settings

SENT_AT = metrics.SENT_AT
REQUEST_ID = "custody_request_id"
_started: dict[str, float] = {}


@before_task_publish.connect
def _stamp(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """When the task was sent (its age in the queue) and which request sent it (the log's request id)."""
    if headers is not None:
        headers.setdefault(SENT_AT, time.time())
        headers.setdefault(REQUEST_ID, logs.request_id.get())


@task_prerun.connect
def _prerun(task_id: str = "", task: Any = None, args: Any = None, **_: Any) -> None:
    _started[task_id] = time.monotonic()
    logs.media_id.set(str(args[0]) if args and task is not None and _is_pipeline(task.name) else "")
    logs.request_id.set(str(getattr(task.request, REQUEST_ID, "") or "") if task is not None else "")


@task_postrun.connect
def _postrun(task_id: str = "", task: Any = None, **_: Any) -> None:
    t0 = _started.pop(task_id, None)
    if t0 is not None and task is not None:
        metrics.TASK_SECONDS.labels(task.name).observe(time.monotonic() - t0)
    logs.media_id.set("")
    logs.request_id.set("")


@task_failure.connect
def _failure(sender: Any = None, **_: Any) -> None:
    metrics.TASK_FAILURES.labels(getattr(sender, "name", "?")).inc()


@task_retry.connect
def _retry(sender: Any = None, **_: Any) -> None:
    metrics.TASK_RETRIES.labels(getattr(sender, "name", "?")).inc()


@worker_ready.connect
def _zero(sender: Any = None, **_: Any) -> None:
    """Each task's failure and retry counters exist from the start, at 0: a labelled counter has no
    series until its first increment, so a dashboard would show no data instead of none failed."""
    app = getattr(sender, "app", None)
    for name in getattr(app, "tasks", {}):
        if name.startswith("custody."):
            metrics.TASK_FAILURES.labels(name)
            metrics.TASK_RETRIES.labels(name)


@worker_process_shutdown.connect
def _dead(pid: int | None = None, **_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


@after_setup_logger.connect
@after_setup_task_logger.connect
def _json_logs(logger: logging.Logger | None = None, **_: Any) -> None:
    if get_settings().log_json and logger is not None:
        for h in logger.handlers:
            h.setFormatter(logs.JsonFormatter())


def _is_pipeline(name: str) -> bool:
    return name in {"custody.verify", "custody.probe", "custody.derive", "custody.sign"}

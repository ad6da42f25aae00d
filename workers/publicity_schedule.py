"""The publicity beat: webhook reconcile, the yearly report drafted in early January and a warning
from 25 January while it is unpublished (it is due by 31 January). Kept apart from the tasks so the
Celery app can build its schedule without importing them, and tests can read what it means."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery.schedules import crontab

from archive.config import Settings
from archive.publicity.webhooks import DELIVER_TASK

PUBLICITY_QUEUE = "publicity"
DELIVER = DELIVER_TASK
RECONCILE = "custody.publicity_reconcile"
REPORT_DRAFT = "custody.publicity_report_draft"
REPORT_WARN = "custody.publicity_report_warn"
DUE_WARN = "custody.publicity_due_warn"

# 01:00 UTC is 09:00 in Beijing: the office is open when the draft appears or the warning sounds.
REPORT_DRAFT_CRON = crontab(minute="0", hour="1", day_of_month="2-6", month_of_year="1")
REPORT_WARN_CRON = crontab(minute="0", hour="1", day_of_month="25-31", month_of_year="1")
# Every morning: overdue and soon-due decisions in the worker log (what `custody publicity due` lists).
DUE_WARN_CRON = crontab(minute="30", hour="0")


def publicity_beat(s: Settings) -> dict[str, dict[str, Any]]:
    return {
        "publicity-webhook-reconcile": {
            "task": RECONCILE,
            "schedule": timedelta(seconds=s.publicity_reconcile_interval_s),
        },
        # Drafting is idempotent (only when no version exists), so five chances cover a worker that
        # was down on the 2nd.
        "publicity-report-draft": {"task": REPORT_DRAFT, "schedule": REPORT_DRAFT_CRON},
        "publicity-report-warn": {"task": REPORT_WARN, "schedule": REPORT_WARN_CRON},
        "publicity-due-warn": {"task": DUE_WARN, "schedule": DUE_WARN_CRON},
    }


PUBLICITY_ROUTES = {
    name: {"queue": PUBLICITY_QUEUE} for name in (DELIVER, RECONCILE, REPORT_DRAFT, REPORT_WARN, DUE_WARN)
}

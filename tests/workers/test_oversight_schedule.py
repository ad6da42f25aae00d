"""The early-warning check's beat entry means what it says (a wrong crontab fails here, not at 3 a.m.)."""

from __future__ import annotations

import pytest

from archive.config import get_settings
from workers.celery_app import make_celery


def test_oversight_check_runs_daily_at_the_configured_time(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    beat = make_celery().conf.beat_schedule
    entry = beat["oversight-check"]
    assert entry["task"] == "custody.oversight_check"
    assert entry["schedule"].minute == {15} and entry["schedule"].hour == {3}
    assert len(entry["schedule"].day_of_month) == 31
    monkeypatch.setenv("CUSTODY_OVERSIGHT_CHECK_CRON", "0 */6 * * *")
    get_settings.cache_clear()
    try:
        six_hourly = make_celery().conf.beat_schedule["oversight-check"]["schedule"]
        assert six_hourly.hour == {0, 6, 12, 18} and six_hourly.minute == {0}
    finally:
        get_settings.cache_clear()


def test_the_task_is_registered() -> None:
    import workers.tasks  # noqa: F401  (registers the tasks on the app)
    from workers.celery_app import app

    assert "custody.oversight_check" in app.tasks

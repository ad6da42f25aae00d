"""`custody dock --device-clock`: the recorder's clock offset is measured at docking and lands on
every media item as ``measured``; the timeline then shows the corrected time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.media.models import Media
from cli.dock import DockError, measure_clock_offset
from tests.conftest import LiveAPI
from tests.test_e2e import dock

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)


def test_offset_is_device_minus_true_time() -> None:
    assert measure_clock_offset("2024-06-10T12:02:05Z", NOW) == 125.0
    assert measure_clock_offset("2024-06-10T13:59:59.5+02:00", NOW) == -0.5
    # A time without a zone is read in the agency's zone (Asia/Shanghai unless CUSTODY_TIMEZONE says
    # otherwise), whatever the station's system zone: 20:00:30 in Beijing is 12:00:30 UTC.
    assert measure_clock_offset("2024-06-10T20:00:30", NOW) == 30.0
    assert measure_clock_offset("2024年6月10日 20:00:30", NOW) == 30.0
    assert (
        measure_clock_offset("2024-06-10T12:00:00-00:00", NOW.astimezone(timezone(timedelta(hours=5)))) == 0
    )
    with pytest.raises(DockError, match="is not a time"):
        measure_clock_offset("ten past two", NOW)


def test_dock_sends_the_measured_offset(
    live_api: LiveAPI, make_user: Any, engine: Engine, tmp_path: Path
) -> None:
    """No worker on purpose: the offset travels with the upload and is on the media row when the bytes
    are complete; whether the hash is then verified is the ingest tests' business (the dock says FAIL
    after its short verify timeout here)."""
    officer = make_user("0815", "officer")
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "note.wav").write_bytes(b"RIFF" + bytes(2000))  # any bytes: only the clock matters here
    shown = (datetime.now(UTC) + timedelta(seconds=90)).isoformat()
    out = dock(live_api, officer, rec, tmp_path / "s.json", "--device-clock", shown, "--verify-timeout", "1")
    assert "recorder clock offset +" in out.stderr, out.stdout + out.stderr
    with Session(engine) as s:
        (item,) = s.exec(select(Media)).all()
    assert item.clock_source == "measured"
    assert item.clock_offset_s == pytest.approx(90, abs=5)
    both = dock(live_api, officer, rec, tmp_path / "s2.json", "--device-clock", shown, "--clock-offset", "3")
    assert both.returncode == 2 and "not both" in both.stderr

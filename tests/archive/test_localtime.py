"""Time as people read it: stored UTC, shown and typed in the agency's zone with the zone named;
across the zone boundary a recording lands on the right local date and links to the right record."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from archive.cases.models import Case, TextRecord
from archive.config import Settings
from archive.export.services import records_html
from archive.i18n import use_language
from archive.localtime import (
    LocalDateTime,
    format_local,
    local_date,
    parse_local,
    to_local,
    zone_label,
)
from archive.media.models import ClockSource
from tests.case_factories import auth, media_row, new_case, record_body
from tests.conftest import LiveAPI

T = datetime(2024, 6, 10, 14, 3, 5, tzinfo=UTC)


def test_shown_in_the_agency_zone_with_the_zone_named() -> None:
    assert format_local(T, "zh-CN") == "2024-06-10 22:03:05 北京时间"
    assert format_local(T, "en") == "2024-06-10 22:03:05 CST (UTC+08:00)"
    assert format_local(T.replace(tzinfo=None), "en") == "2024-06-10 22:03:05 CST (UTC+08:00)"  # SQLite
    assert format_local(T + timedelta(milliseconds=500), "en", milliseconds=True).startswith(
        "2024-06-10 22:03:05.500 "
    )
    assert format_local(None) == ""
    # Another agency's zone: its abbreviation where it has one, the offset always; summer time too.
    assert format_local(T, "en", zone="Europe/Berlin") == "2024-06-10 16:03:05 CEST (UTC+02:00)"
    assert format_local(T, "zh-CN", zone="Asia/Urumqi") == "2024-06-10 20:03:05 UTC+06:00"
    assert zone_label(datetime(2024, 1, 10, tzinfo=UTC), "America/St_Johns", "en") == "NST (UTC-03:30)"
    with use_language("zh-CN"):
        assert format_local(T) == "2024-06-10 22:03:05 北京时间"


@pytest.mark.parametrize(
    "typed",
    [
        "2024-06-30 23:59",
        "2024-06-30T23:59:00",
        "2024/6/30 23:59",
        "2024年6月30日 23:59",
        "2024年6月30日 23时59分",
        "2024年6月30日23时59分0秒",
        "2024-06-30T23:59:00+08:00",
        "2024-06-30T15:59:00Z",
    ],
)
def test_typed_times_are_read_in_the_agency_zone(typed: str) -> None:
    assert parse_local(typed) == datetime(2024, 6, 30, 15, 59, tzinfo=UTC)


def test_a_date_alone_is_its_local_midnight_and_nonsense_is_refused() -> None:
    assert parse_local("2024-07-01") == datetime(2024, 6, 30, 16, 0, tzinfo=UTC)
    with use_language("zh-CN"), pytest.raises(ValueError, match="不是有效时间"):
        parse_local("昨天下午")
    with use_language("en"), pytest.raises(ValueError, match="is not a time"):
        parse_local("2024-13-45 25:00")


def test_local_calendar_dates_cross_the_boundary() -> None:
    last_minute = datetime(2024, 6, 30, 15, 59, 30, tzinfo=UTC)  # 23:59:30 on 30 June in Beijing
    assert local_date(last_minute) == date(2024, 6, 30)
    assert local_date(last_minute + timedelta(seconds=30)) == date(2024, 7, 1)
    # The UTC date of an early-morning Beijing time is the day before: 07:30 on 1 July is 30 June UTC.
    assert local_date(datetime(2024, 6, 30, 23, 30, tzinfo=UTC)) == date(2024, 7, 1)
    assert to_local(last_minute).isoformat() == "2024-06-30T23:59:30+08:00"


def test_api_fields_read_naive_times_as_local() -> None:
    class Body(BaseModel):
        at: LocalDateTime

    assert Body(at="2024-06-30T23:59:00").at == datetime(2024, 6, 30, 15, 59, tzinfo=UTC)  # type: ignore[arg-type]
    assert Body(at="2024-06-30T23:59:00Z").at == datetime(2024, 6, 30, 23, 59, tzinfo=UTC)  # type: ignore[arg-type]


def test_the_zone_is_validated() -> None:
    assert Settings(timezone="Asia/Urumqi").timezone == "Asia/Urumqi"
    for bad in ("Mars/Olympus_Mons", "../../etc/passwd", ""):
        with pytest.raises(ValueError, match="unknown time zone"):
            Settings(timezone=bad)


def test_a_recording_at_2359_on_the_last_day_of_june(
    live_api: LiveAPI, make_user: Any, engine: Engine
) -> None:
    """Recorded at 23:59:29 on 30 June, Beijing time, by a recorder whose clock runs 60 s fast (it
    said 00:00:29 on 1 July). Records typed in local time: the one at 23:59 on 30 June links it; the
    one at 00:06 on 1 July does not (it would, on the uncorrected device clock). The timeline shows
    30 June, Beijing time; the correction is unchanged."""
    clerk = make_user("clerk", "records-manager")
    url = live_api.url
    device_time = datetime(2024, 6, 30, 16, 0, 29, tzinfo=UTC)  # 00:00:29 on 1 July in Beijing
    mid = media_row(
        engine, recorded_at=device_time, offset_s=60.0, duration_s=60.0, source=ClockSource.MEASURED
    )
    june = new_case(url, clerk, number="2024-0630")
    july = new_case(url, clerk, number="2024-0701")

    def record(case: dict[str, Any], start: str, end: str) -> httpx.Response:
        body = {**record_body(T, T, ["0815"]), "occurred_from": start, "occurred_to": end}
        return httpx.post(f"{url}/api/v1/cases/{case['id']}/records", json=body, headers=auth(clerk))

    first = record(june, "2024-06-30 23:59:00", "2024-06-30 23:59:50")
    assert first.status_code == 201, first.text
    assert first.json()["linked_media"] == [mid]
    assert first.json()["record"]["occurred_from"].startswith("2024-06-30T15:59:00")
    second = record(july, "2024-07-01 00:06:00", "2024-07-01 00:08:00")
    assert second.status_code == 201 and second.json()["linked_media"] == []  # buffer 300 s: ends 00:05:29

    timeline = httpx.get(f"{url}/api/v1/cases/{june['id']}/timeline", headers=auth(clerk)).json()
    (item,) = [i for i in timeline["items"] if i["type"] == "media"]
    start = datetime.fromisoformat(item["start"])
    assert start == datetime(2024, 6, 30, 15, 59, 29, tzinfo=UTC)  # device time minus the offset
    assert item["clock_offset_s"] == 60.0 and "60 s fast" in item["correction"]
    assert format_local(start, "zh-CN") == "2024-06-30 23:59:29 北京时间"
    assert local_date(start) == date(2024, 6, 30) and local_date(device_time) == date(2024, 7, 1)

    # Finding cases by a local date: 30 June in Beijing is 29 June 16:00 to 30 June 16:00 UTC.
    found = httpx.get(
        f"{url}/api/v1/cases",
        params={"since": "2024-06-30 00:00", "until": "2024-06-30 23:59:59"},
        headers=auth(clerk),
    ).json()
    assert [c["number"] for c in found["items"]] == ["2024-0630"]


def test_the_printed_records_are_in_chinese_with_beijing_times() -> None:
    case = Case(id="c1", number="2024-0630", title="路边检查 <b>", kind="administrative", created_by="clerk")
    rec = TextRecord(
        record_id="r1",
        case_id="c1",
        stage="evidence-collection",
        doc_kind="inquiry-transcript",
        title="",
        author="0815",
        officers=["0815", "4711"],
        occurred_from=datetime(2024, 6, 30, 15, 59, tzinfo=UTC),
        occurred_to=datetime(2024, 6, 30, 16, 1, tzinfo=UTC),
        body="当事人称：<script>",
        created_by="clerk",
        created_at=datetime(2024, 6, 30, 16, 30, tzinfo=UTC),
    )
    with use_language("zh-CN"):
        page = records_html(case, [rec]).decode()
    assert "<html lang='zh-CN'>" in page and "Noto Serif CJK SC" in page
    assert "行政案件，阶段：立案" in page and "询问笔录 · 取证" in page
    assert "<time datetime='2024-06-30T15:59:00+00:00'>2024-06-30 23:59:00 北京时间</time> 至 " in page
    assert "2024-07-01 00:01:00 北京时间" in page  # the record ends after midnight, local time
    assert "路边检查 &lt;b&gt;" in page and "&lt;script&gt;" in page and "<script>" not in page
    with use_language("en"):
        page = records_html(case, [rec]).decode()
    assert "<html lang='en'>" in page and "Inquiry transcript · Evidence collection" in page
    assert "2024-06-30 23:59:00 CST (UTC+08:00)" in page

"""Time as the agency's staff read and type it. Storage stays UTC; people see the agency's zone.

The zone is ``Settings.timezone`` (IANA name, default ``Asia/Shanghai``, Debian's tzdata). Shown
times always name their zone, so a printed page is never ambiguous::

    format_local(t)          # "2024-06-10 22:03:05 北京时间"            (zh-CN)
                             # "2024-06-10 22:03:05 CST (UTC+08:00)"     (en)

Typed times are read in the agency's zone unless they carry an offset (:func:`parse_local`,
:func:`assume_local`, the :data:`LocalDateTime` field type for API bodies and query parameters).
Local calendar dates (a legal deadline, "recordings of 30 June") come from :func:`local_date`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator

from archive.clock import checked_utc
from archive.i18n import _, current_language

# Zones whose clocks are Beijing time; Chinese readers call it 北京时间, not by its abbreviation.
BEIJING_ZONES = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"})


def agency_zone() -> ZoneInfo:
    from archive.config import get_settings

    return ZoneInfo(get_settings().timezone)


def _zone(zone: tzinfo | str | None) -> tzinfo:
    if zone is None:
        return agency_zone()
    return ZoneInfo(zone) if isinstance(zone, str) else zone


def _as_utc(value: datetime) -> datetime:
    # Stored datetimes come back naive from SQLite: they are UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_local(value: datetime, zone: tzinfo | str | None = None) -> datetime:
    """A stored (UTC, aware or naive) datetime in the agency's zone."""
    return _as_utc(value).astimezone(_zone(zone))


def local_date(value: datetime, zone: tzinfo | str | None = None) -> date:
    """The agency's calendar date of an instant (23:59 on 30 June in Beijing is 15:59 UTC, 30 June)."""
    return to_local(value, zone).date()


def format_offset(offset: timedelta | None) -> str:
    """``UTC+08:00``, ``UTC-03:30``, ``UTC+00:00``."""
    minutes = int((offset or timedelta(0)).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


def is_beijing(zone: tzinfo | str | None = None) -> bool:
    return str(getattr(_zone(zone), "key", _zone(zone))) in BEIJING_ZONES


def zone_label(value: datetime, zone: tzinfo | str | None = None, language: str | None = None) -> str:
    """How the zone of ``value`` is named beside it: ``北京时间`` for Beijing time read in Chinese,
    else the zone's abbreviation (when it has a letter one) and its UTC offset."""
    z = _zone(zone)
    local = _as_utc(value).astimezone(z)
    lang = language or current_language()
    offset = format_offset(local.utcoffset())
    if lang == "zh-CN" and is_beijing(z):
        return "北京时间"
    abbr = local.tzname() or ""
    if not abbr or abbr[0] in "+-" or abbr.startswith("UTC"):
        return offset  # zones without a letter abbreviation (tzdata writes "+06")
    return f"{abbr} ({offset})"


def format_local(
    value: datetime | None,
    language: str | None = None,
    *,
    zone: tzinfo | str | None = None,
    seconds: bool = True,
    milliseconds: bool = False,
) -> str:
    """``2024-06-10 22:03:05 北京时间`` / ``2024-06-10 22:03:05 CST (UTC+08:00)``; "" for None."""
    if value is None:
        return ""
    local = to_local(value, zone)
    text = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    if milliseconds and local.microsecond:
        text += f".{local.microsecond // 1000:03d}"
    return f"{text} {zone_label(value, zone, language)}"


def format_local_date(value: datetime | date, zone: tzinfo | str | None = None) -> str:
    """An instant's (or a date's) calendar date in the agency's zone, ``YYYY-MM-DD``."""
    day = value if not isinstance(value, datetime) else local_date(value, zone)
    return day.isoformat()


def assume_local(value: datetime, zone: tzinfo | str | None = None) -> datetime:
    """A typed datetime as UTC: one without an offset was meant in the agency's zone."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_zone(zone))
    # At the calendar's edge (9999-12-31T23:59:59-14:00) the UTC instant does not exist: 400, not 500.
    return checked_utc(value, "time")


_CJK = str.maketrans(
    {"年": "-", "月": "-", "日": " ", "时": ":", "点": ":", "分": ":", "秒": " ", "：": ":", "/": "-"}
)
_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]+(\d{1,2}):(\d{1,2})(?::(\d{1,2})(\.\d{1,6})?)?)?(.*)$"
)


def _normalize_typed(text: str) -> str:
    """``2024年6月30日 23时59分`` and ``2024/6/30 23:59`` as ISO 8601 (``2024-06-30 23:59:00``)."""
    raw = " ".join(text.translate(_CJK).split()).rstrip(":").strip()
    m = _DATE_TIME.match(raw)
    if not m:
        return raw
    y, mo, d, h, mi, s, frac, rest = m.groups()
    out = f"{int(y):04d}-{int(mo):02d}-{int(d):02d}"
    if h is not None:
        out += f" {int(h):02d}:{int(mi):02d}:{int(s or 0):02d}{frac or ''}"
    return out + rest.strip()


def parse_local(text: str, zone: tzinfo | str | None = None) -> datetime:
    """A time a person typed, as an aware UTC datetime. Accepts ISO 8601 (``2024-06-30 23:59``,
    ``2024-06-30T23:59:05+08:00``, ``...Z``), slashes (``2024/6/30 23:59``) and the Chinese form
    (``2024年6月30日 23时59分``); a date alone is its local midnight. Without an offset the time is
    read in the agency's zone. ValueError (with a translated message) for anything else."""
    try:
        parsed = datetime.fromisoformat(_normalize_typed(text[:100]))
    except ValueError:
        raise ValueError(
            _("{text!r} is not a time (for example 2024-06-30 23:59 or 2024-06-30T23:59:00+08:00)").format(
                text=text[:64]
            )
        ) from None
    return assume_local(parsed, zone)


# For API bodies and query parameters: a datetime without an offset is the agency's local time.
LocalDateTime = Annotated[datetime, AfterValidator(assume_local)]

"""An injectable clock: wherever time decides something, it comes from here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from archive.errors import InvalidInput
from archive.i18n import _

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


# The instants the archive accepts from outside: a day inside datetime's range on either side, so
# converting to UTC and adding a buffer of up to a day never overflows (9999-12-31T23:59:59-14:00
# is past the year 9999 in UTC).
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


class OutOfRange(InvalidInput):
    code = "time.out_of_range"


def checked_utc(value: datetime, name: str) -> datetime:
    """``value`` in UTC (a naive value is read as UTC), refused (:class:`OutOfRange`) outside
    [EARLIEST, LATEST]: inputs at the edge of the calendar answer 400, not a server error."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise OutOfRange(
            _("{name}: {value} is out of range").format(name=name, value=value.isoformat())
        ) from exc
    if not EARLIEST <= utc <= LATEST:
        raise OutOfRange(_("{name}: {value} is out of range").format(name=name, value=value.isoformat()))
    return utc


def as_utc(value: datetime) -> datetime:
    """Read a stored datetime as UTC (SQLite returns naive values for aware ones)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

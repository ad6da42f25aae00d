from __future__ import annotations

from archive.errors import InvalidInput
from archive.i18n import _


class CalendarGap(InvalidInput):
    """A working-day question about a year that neither the holiday library nor the operator's
    overrides cover, from the strict functions (``is_working_day``, ``add_working_days``); the
    operator adds the year (``custody calendar set``) from the State Council's notice. Deadlines are
    never refused for it: they are provisional meanwhile (``WorkCalendar.deadline``)."""

    http_status = 422
    code = "calendar.year_unknown"

    def __init__(self, year: int) -> None:
        super().__init__(
            _(
                "the working-day calendar does not know the year {year}: add the State Council's "
                "holiday arrangement for {year} to the calendar overrides"
            ).format(year=year)
        )
        self.year = year


class InvalidCalendar(InvalidInput):
    http_status = 422
    code = "calendar.invalid"

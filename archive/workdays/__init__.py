"""China's working-day calendar, shared by every rule that counts working days (工作日).

Legal time limits in the seeds are counted in working days: legal review within 5 working days
(issue 12), publicity within 7 or 20 working days (issue 14). A working day follows China's statutory
holidays and their make-up working days (调休), not just weekends, so:

- the State Council's published arrangement comes from the maintained ``chinesecalendar`` library;
- the operator's overrides are data: a JSON document shipped with the package
  (``default_overrides.json``) and versions kept in the database (``workday_calendars``), each set
  with a reason and logged. They fill years the library does not know yet and correct single days
  (a local holiday, an office closure decided by the agency);
- a date in a year neither knows raises :class:`CalendarGap` from the strict functions; a deadline
  is never refused for it and never silently guessed: :meth:`WorkCalendar.deadline` answers a
  provisional, conservative date (every day of the unknown year counted as working, so never later
  than the real one) that callers store and show as provisional, and
  :mod:`archive.workdays.provisional` recomputes when the operator sets the year and warns ahead
  (from ``warn_from``, 1 November) about a next year the calendar does not know.

Use :func:`archive.workdays.services.current_calendar` where the operator's database versions must
count (everything that stores a deadline); the module-level functions below use the library and the
shipped file only.
"""

from archive.workdays.calendar import (
    Deadline,
    WorkCalendar,
    add_working_days,
    default_calendar,
    is_working_day,
    local_date,
    working_days_between,
)
from archive.workdays.errors import CalendarGap

__all__ = [
    "CalendarGap",
    "Deadline",
    "WorkCalendar",
    "add_working_days",
    "default_calendar",
    "is_working_day",
    "local_date",
    "working_days_between",
]

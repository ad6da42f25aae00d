"""HTTP Range (RFC 9110 §14) for streamed objects: one byte range per request, as media players ask."""

from __future__ import annotations

import re

from archive.errors import CustodyError
from archive.i18n import _

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(CustodyError):
    http_status = 416
    code = "range.not_satisfiable"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return (start, end inclusive), or None for the whole object. Unparseable or multi-range
    headers are ignored (RFC 9110 allows answering 200 with the whole representation)."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # suffix range: the last N bytes
        n = int(last)
        if n == 0:
            raise RangeNotSatisfiable(_("empty suffix range for a {size}-byte object").format(size=size))
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(
            _("range {header} is outside the {size}-byte object").format(header=header, size=size)
        )
    return start, end

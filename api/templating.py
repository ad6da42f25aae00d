"""Server-rendered pages in the request's language: Jinja2 templates in api/pages/, autoescaped.

A page is served already in its language (``<html lang>``, every label in the HTML): templates
call ``_("English text")`` (extracted by ``pybabel`` through babel.cfg) and ``label(domain, key)``
for the procedure's vocabulary; strings a page's script builds are passed to it as a JSON data
block (``texts``), translated here, never switched by script after load. Times are shown in the
agency's zone with the zone named (``fmt_time``); scripts that format times themselves get the same
rules in ``clock`` (see review.js).

    return render_page("case.html", title=_("Case review"), texts={"play": _("Play all")})
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi.responses import HTMLResponse

from archive import i18n, localtime, vocabulary
from archive.config import get_settings

PAGES = Path(__file__).resolve().parent / "pages"

# Pages hold no inline script or style; text that slipped past escaping cannot run.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

# The fonts pages and printed records ask for (Chinese first): archive.i18n.
CJK_SANS, CJK_SERIF = i18n.CJK_SANS, i18n.CJK_SERIF


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(PAGES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=i18n._, ngettext=i18n.ngettext, newstyle=False
    )
    return env


_ENV = _environment()


def clock_config(language: str | None = None) -> dict[str, Any]:
    """What a page script needs to show times as the server does (archive.localtime):
    the agency's zone, and how to name it at each of its UTC offsets this year."""
    lang = language or i18n.current_language()
    zone = localtime.agency_zone()
    year = datetime.now(UTC).year
    names: dict[str, str] = {}
    for month in (1, 7):  # standard and (where there is one) summer time
        t = datetime(year, month, 1, 12, tzinfo=UTC)
        offset = t.astimezone(zone).utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset is not None else 0
        names[str(minutes)] = localtime.zone_label(t, zone, lang)
    return {"timezone": zone.key, "language": lang, "zone_names": names}


def zone_note(language: str | None = None) -> str:
    """``北京时间（UTC+08:00）`` / ``CST (UTC+08:00), Asia/Shanghai``: how a page names its zone."""
    lang = language or i18n.current_language()
    zone = localtime.agency_zone()
    now = datetime.now(UTC)
    offset = localtime.format_offset(now.astimezone(zone).utcoffset())
    label = localtime.zone_label(now, zone, lang)
    if label == offset:
        return f"{offset} ({zone.key})"
    if lang == "zh-CN" and localtime.is_beijing(zone):
        return f"{label}（{offset}）"
    return f"{label}, {zone.key}"


def render(name: str, **context: Any) -> str:
    lang = i18n.current_language()
    base: dict[str, Any] = {
        "lang": lang,
        "languages": i18n.LANGUAGE_NAMES,
        "label": vocabulary.label,
        "fmt_time": localtime.format_local,
        "clock": clock_config(lang),
        "zone_note": zone_note(lang),
        "agency_timezone": get_settings().timezone,
        "texts": {},
    }
    return _ENV.get_template(name).render({**base, **context})


def render_page(name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page response: rendered in the request's language, with the pages' strict headers."""
    lang = i18n.current_language()
    return HTMLResponse(
        render(name, **context),
        status_code=status_code,
        headers={**PAGE_HEADERS, "Content-Language": lang},
    )

"""User-facing text: zh-CN first, English second, through gettext catalogs made with Babel.

Every message a person reads (API error ``detail``, page label, CLI line) is written in the code as
``_("English text")``; the English text is the msgid, and ``archive/locale/<lang>/LC_MESSAGES/custody.po``
holds its translation. Placeholders are named and filled after translation::

    raise CaseNotFound(_("no case {number}").format(number=number))

The active language belongs to the request or command, not to the process: a context variable set
by the API's middleware (``Accept-Language``, then the user's own setting once the token is read),
by the CLI (``--lang``, then ``LC_ALL``/``LC_MESSAGES``/``LANG``), or by :func:`use_language`
around any block. Without one, the agency's default applies (``Settings.language``, zh-CN).

``_()`` translates at the moment it is called. Module-level constants are marked with :func:`N_`
(kept in English, extracted into the catalog) and translated where they are shown: ``_(CONSTANT)``.

Catalogs: ``pybabel extract`` (config in babel.cfg) writes ``archive/locale/custody.pot``; ``pybabel
update`` merges it into each ``.po``; ``pybabel compile`` (deploy/install.sh) writes the ``.mo``
files, which are build products and not in git. A catalog whose ``.mo`` is missing or older than its
``.po`` is compiled in memory from the ``.po`` on first use, so a checkout runs without the compile
step and never serves stale text. Fuzzy and empty translations fall back to the English msgid.
See docs/i18n.md.
"""

from __future__ import annotations

import gettext
import io
import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("custody.i18n")

DOMAIN = "custody"
LOCALE_DIR = Path(__file__).with_name("locale")

# BCP 47 tag (what HTTP, HTML and the API speak) -> gettext catalog folder. First is the default.
LANGUAGES: dict[str, str] = {"zh-CN": "zh_CN", "en": "en"}
DEFAULT_LANGUAGE = "zh-CN"
# The name of each language in itself, for a language picker.
LANGUAGE_NAMES: dict[str, str] = {"zh-CN": "简体中文", "en": "English"}

# The fonts every page and printed document asks for: Chinese first (Debian's fonts-noto-cjk, installed
# by deploy/install.sh; WenQuanYi and the usual Windows/macOS fonts as fallbacks), then Latin.
CJK_SANS = (
    '"Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "PingFang SC", '
    '"Microsoft YaHei", system-ui, sans-serif'
)
CJK_SERIF = (
    '"Noto Serif CJK SC", "Source Han Serif SC", "Noto Sans CJK SC", "WenQuanYi Zen Hei", '
    '"Songti SC", "SimSun", serif'
)


def N_(message: str) -> str:  # the gettext convention every extractor knows
    """Mark ``message`` for the catalog without translating it now (constants, tables)."""
    return message


# ------------------------------------------------------------------------------------- languages


def normalize(tag: str | None) -> str | None:
    """The supported language a tag or POSIX locale name means, or None.

    ``zh``, ``zh-CN``, ``zh_CN.UTF-8``, ``zh-Hans-CN`` and the other Chinese variants read the
    Simplified Chinese catalog (the only Chinese one); ``en``, ``en-US``, ``en_GB.UTF-8`` read
    English. ``C``, ``POSIX``, ``*`` and unknown languages say nothing (None).
    """
    if not tag:
        return None
    base = tag.split(".", 1)[0].split("@", 1)[0].replace("_", "-").strip().lower()
    if base in LANGUAGE_BY_LOWER:
        return LANGUAGE_BY_LOWER[base]
    primary = base.split("-", 1)[0]
    if primary == "zh":
        return "zh-CN"
    if primary == "en":
        return "en"
    return None


LANGUAGE_BY_LOWER = {tag.lower(): tag for tag in LANGUAGES}
_QUALITY = re.compile(r"^q=([01](?:\.\d{0,3})?)$")


def negotiate(accept_language: str | None) -> str | None:
    """The best supported language of an ``Accept-Language`` header (RFC 9110 quality values), or
    None when it names none of ours (the caller then uses the default)."""
    if not accept_language:
        return None
    choices: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language[:1024].split(",")):
        tag, *params = (p.strip() for p in item.split(";"))
        quality = 1.0
        for p in params:
            m = _QUALITY.match(p.replace(" ", ""))
            if m:
                quality = float(m.group(1))
        lang = normalize(tag)
        if lang is not None and quality > 0:
            choices.append((-quality, position, lang))
    return min(choices)[2] if choices else None


def from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """The language of a POSIX locale environment, in GNU gettext's order: the locale is the first
    set of ``LC_ALL``, ``LC_MESSAGES``, ``LANG``; unless it is ``C``/``POSIX``, the ``LANGUAGE`` list
    comes first. None when it names none of ours."""
    env = os.environ if environ is None else environ
    locale_name = next((env[k] for k in ("LC_ALL", "LC_MESSAGES", "LANG") if env.get(k)), "")
    if normalize(locale_name) is None and locale_name.split(".", 1)[0] in ("", "C", "POSIX"):
        # C.UTF-8 (a container's usual locale) states no language at all
        return None
    for tag in env.get("LANGUAGE", "").split(":"):
        lang = normalize(tag)
        if lang is not None:
            return lang
    return normalize(locale_name)


def default_language() -> str:
    """The agency's default (``CUSTODY_LANGUAGE``, zh-CN unless set)."""
    from archive.config import get_settings

    return get_settings().language


def validate(tag: str) -> str:
    """``tag`` as one of :data:`LANGUAGES`; ValueError names the supported ones."""
    lang = normalize(tag)
    if lang is None:
        raise ValueError(f"unsupported language {tag!r}; supported: {', '.join(LANGUAGES)}")
    return lang


# ------------------------------------------------------------------------------ active language


@dataclass
class _Choice:
    """The language of one request or command. Mutable on purpose: FastAPI runs dependencies in
    copies of the request's context, and the user's own setting, read by the authentication
    dependency, must reach the endpoint and the error handler that run in other copies."""

    language: str | None = None


_current: ContextVar[_Choice | None] = ContextVar("custody_language", default=None)


def current_language() -> str:
    choice = _current.get()
    if choice is not None and choice.language is not None:
        return choice.language
    return default_language()


def set_language(tag: str | None) -> None:
    """Set the language of the current request or command (None: back to the default)."""
    lang = validate(tag) if tag is not None else None
    choice = _current.get()
    if choice is None:
        _current.set(_Choice(lang))
    else:
        choice.language = lang


@contextmanager
def use_language(tag: str | None) -> Iterator[str]:
    """Run a block in ``tag`` (None: the default), restoring the outer language afterwards.
    :func:`set_language` inside the block changes the block's language only."""
    token = _current.set(_Choice(validate(tag) if tag is not None else None))
    try:
        yield current_language()
    finally:
        _current.reset(token)


# ---------------------------------------------------------------------------------- catalogs


def catalog_path(language: str, suffix: str = ".po") -> Path:
    return LOCALE_DIR / LANGUAGES[language] / "LC_MESSAGES" / f"{DOMAIN}{suffix}"


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of ``language``: its compiled ``.mo`` when that is at least as new as the ``.po``,
    else the ``.po`` compiled in memory (fuzzy entries left out, as ``pybabel compile`` does)."""
    po, mo = catalog_path(language), catalog_path(language, ".mo")
    try:
        if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
            with mo.open("rb") as fh:
                return gettext.GNUTranslations(fh)
        if po.exists():
            return gettext.GNUTranslations(io.BytesIO(compile_po(po)))
    except (OSError, ValueError) as exc:  # a broken catalog must not take pages down: English
        log.error("catalog %s unreadable (%s); showing English", po, exc)
    return gettext.NullTranslations()


def compile_po(po: Path) -> bytes:
    """A ``.po`` file as ``.mo`` bytes (Babel's compiler, fuzzy entries skipped)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as fh:
        catalog = read_po(fh)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def translate(message: str, language: str | None = None) -> str:
    """``message`` in ``language`` (default: the active one)."""
    return translations(language or current_language()).gettext(message)


def _(message: str) -> str:
    """``message`` (an English msgid) in the active language."""
    return translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form for ``n`` in the active language (Chinese has one form; English two)."""
    return translations(current_language()).ngettext(singular, plural, n)


gettext_ = _  # for code that shadows ``_`` (e.g. tuple unpacking into _)

"""The command line in the chosen language, Click's way.

Click shows a command's help from its docstring and each option's from ``help=``; both stay written
in English in the code (the msgids, extracted by cli/i18n_extract.py) and are translated when the
help is formatted, so the language chosen by ``--lang`` or the locale applies even though the
commands were built at import. Every command and group of ``custody`` is a :class:`Command` or
:class:`Group` (the root sets them as its ``command_class``/``group_class``; the groups defined in
other modules name ``cls=Group``).

Click's own words ("Usage:", "Options", "Missing option", "Error: ...") go through ``gettext`` in
each Click module; :func:`install` points those names at the archive's catalog, and
:data:`CLICK_MESSAGES` puts them there.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import click.core
import click.decorators
import click.exceptions
import click.formatting
import click.parser
import click.termui
import click.types
import click.utils

from archive import i18n
from archive.i18n import N_, ngettext
from cli.i18n_extract import help_msgid

# Click's own messages a person meets at the command line (its msgids, verbatim).
CLICK_MESSAGES = (
    N_("Usage:"),
    N_("Options"),
    N_("Commands"),
    N_("Show this message and exit."),
    N_("Error: {message}"),
    N_("Try '{command} {option}' for help."),
    N_("Invalid value for {param_hint}: {message}"),
    N_("Invalid value: {message}"),
    N_("Missing argument"),
    N_("Missing option"),
    N_("Missing parameter"),
    N_("Missing command."),
    N_("Missing {param_type}"),
    N_("No such option: {name}"),
    N_("No such command {name!r}."),
    N_("default: {default}"),
    N_("required"),
    N_("Aborted!"),
    N_("{value!r} is not a valid {number_type}."),
    N_("{value} is not in the range {range}."),
    N_("Option {name!r} does not take a value."),
    N_("{name} {filename!r} does not exist."),
    N_("{name} {filename!r} is a directory."),
    N_("{name} {filename!r} is a file."),
    # (not "file", "directory", "path": Click names its Path types once, at import, in metavars)
)


def _click_plurals() -> None:  # never called: marks Click's plural messages for the catalog
    # (not "{value!r} is not {choice}." / "... one of {choices}." and "Option {name!r} requires an
    # argument." / "... {nargs} arguments.": their forms name different fields, which one Chinese form
    # cannot; Click says those in English)
    ngettext("Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})", 1)


_CLICK_MODULES = (
    click.core,
    click.decorators,
    click.exceptions,
    click.formatting,
    click.parser,
    click.termui,
    click.types,
    click.utils,
)


def _click_gettext(message: str) -> str:
    return i18n.translate(message)


def _click_ngettext(singular: str, plural: str, n: int) -> str:
    return i18n.ngettext(singular, plural, n)


def install() -> None:
    """Click's own words in the active language (its modules call ``_``/``ngettext`` by name)."""
    for module in _CLICK_MODULES:
        if hasattr(module, "_"):
            module._ = _click_gettext  # type: ignore[attr-defined]
        if hasattr(module, "ngettext"):
            module.ngettext = _click_ngettext  # type: ignore[attr-defined]


def translate_help(text: str | None) -> str | None:
    """A docstring or ``help=`` text in the active language (English when the catalog has none)."""
    if not text:
        return text
    msgid = help_msgid(text)
    translated = i18n.translate(msgid)
    return text if translated == msgid else translated  # untranslated: as written (Click's own layout)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def short_help(text: str, limit: int) -> str:
    """The first sentence, cut to ``limit`` terminal columns (a Chinese character takes two), at a
    word's end where there are spaces."""
    first = re.split(r"(?<=\.)\s|。|；|\n", text.strip(), maxsplit=1)[0].strip()
    if _width(first) <= limit:
        return first
    out = ""
    for c in first:
        if _width(out + c) > limit - 3:
            break
        out += c
    wide = any(unicodedata.east_asian_width(c) in "WF" for c in out)
    if not wide and " " in out and not first[len(out) : len(out) + 1].isspace():
        out = out.rsplit(" ", 1)[0]
    return out.rstrip(" ,;:") + "..."


@contextmanager
def _translated(command: click.Command) -> Iterator[None]:
    """The command's and its parameters' help in the active language while the help is written."""
    saved: list[tuple[Any, str, str]] = []
    for obj in (command, *command.params):
        for attr in ("help", "short_help", "epilog"):
            value = getattr(obj, attr, None)
            if isinstance(value, str) and value:
                saved.append((obj, attr, value))
                setattr(obj, attr, translate_help(value))
    try:
        yield
    finally:
        for obj, attr, value in saved:
            setattr(obj, attr, value)


class Command(click.Command):
    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with _translated(self):
            super().format_help(ctx, formatter)

    def get_short_help_str(self, limit: int = 45) -> str:
        text = translate_help(self.short_help or self.help) or ""
        return short_help(text, limit) if text else ""


class Group(click.Group):
    command_class = Command
    group_class = type  # subgroups are of the group's own class

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with _translated(self):
            super().format_help(ctx, formatter)

    def get_short_help_str(self, limit: int = 45) -> str:
        text = translate_help(self.short_help or self.help) or ""
        return short_help(text, limit) if text else ""


def early_language(args: list[str]) -> str | None:
    """The ``--lang`` of a command line, read before Click parses it, so that ``custody --help
    --lang en`` (help is processed first) is in English too. None: not given or not valid."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--lang" and i + 1 < len(args):
            return i18n.normalize(args[i + 1])
        if arg.startswith("--lang="):
            return i18n.normalize(arg.partition("=")[2])
    return None


def commands(group: click.Group) -> Iterator[tuple[str, click.Command]]:
    """Every command under ``group`` with its full name (``custody users add``)."""
    stack: list[tuple[str, click.Command]] = [(group.name or "custody", group)]
    while stack:
        name, cmd = stack.pop()
        yield name, cmd
        if isinstance(cmd, click.Group):
            for sub_name, sub in sorted(cmd.commands.items()):
                stack.append((f"{name} {sub_name}", sub))

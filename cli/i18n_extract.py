"""Babel extractor for the CLI (babel.cfg ``[extractors] click``): the usual ``_()``/``N_()`` calls,
plus the help Click shows, which is written as docstrings and ``help=`` arguments and translated
when shown (cli/i18n.py). Imports nothing but the standard library and Babel, so ``pybabel
extract`` runs without the app's settings."""

from __future__ import annotations

import ast
import inspect
import io
import re
from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

from babel.messages.extract import extract_python

CLICK_DECORATORS = {"command", "group"}
CLICK_PARAMS = {"option", "argument", "command", "group"}
HELP_ARGS = {"help", "short_help", "epilog"}


def help_msgid(text: str) -> str:
    """Help text as Click shows it (``inspect.cleandoc``, cut at ``\\f``), paragraphs unwrapped: the
    catalog's msgid. Click wraps each paragraph again to the terminal's width."""
    text = inspect.cleandoc(text).partition("\f")[0].strip()
    paragraphs = re.split(r"\n\s*\n", text)
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def click_help(source: str | bytes) -> Iterator[tuple[int, str]]:
    """(line, msgid) of every command docstring and ``help=`` text in a module's source."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if any(_name(d) in CLICK_DECORATORS for d in node.decorator_list):
                doc = ast.get_docstring(node, clean=False)
                if doc and help_msgid(doc):
                    yield node.lineno, help_msgid(doc)
        elif isinstance(node, ast.Call) and _name(node) in CLICK_PARAMS:
            for kw in node.keywords:
                if kw.arg in HELP_ARGS:
                    value = kw.value
                    if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value:
                        yield kw.value.lineno, help_msgid(value.value)


def extract_click(
    fileobj: IO[bytes], keywords: Mapping[str, Any], comment_tags: Collection[str], options: Any
) -> Iterator[Any]:
    data = fileobj.read()
    yield from extract_python(io.BytesIO(data), keywords, comment_tags, options)
    for lineno, message in click_help(data):
        yield lineno, None, message, []

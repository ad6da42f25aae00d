"""Request validation errors (422) in the request's language.

Pydantic words its errors in English (``Field required``, ``String should have at most 64
characters``). People read ``detail``: each problem is said again here in the request's language,
naming the field and where it was (body, query, path, header, cookie), from pydantic's stable error
``type`` and its ``ctx`` values; programs read ``code`` (``request.invalid``), which never changes.
An error type not listed keeps pydantic's own sentence inside the translated frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from archive.i18n import N_, _

# pydantic error type -> message with ctx placeholders (pydantic_core's ErrorType names).
MESSAGES: dict[str, str] = {
    "missing": N_("is required"),
    "extra_forbidden": N_("is not a known field"),
    "string_type": N_("must be text"),
    "string_too_short": N_("must have at least {min_length} characters"),
    "string_too_long": N_("must have at most {max_length} characters"),
    "string_pattern_mismatch": N_("is not in the expected form"),
    "int_type": N_("must be a whole number"),
    "int_parsing": N_("must be a whole number"),
    "int_from_float": N_("must be a whole number"),
    "float_type": N_("must be a number"),
    "float_parsing": N_("must be a number"),
    "decimal_parsing": N_("must be a number"),
    "bool_type": N_("must be true or false"),
    "bool_parsing": N_("must be true or false"),
    "greater_than": N_("must be greater than {gt}"),
    "greater_than_equal": N_("must be at least {ge}"),
    "less_than": N_("must be less than {lt}"),
    "less_than_equal": N_("must be at most {le}"),
    "too_short": N_("must have at least {min_length} items"),
    "too_long": N_("must have at most {max_length} items"),
    "list_type": N_("must be a list"),
    "dict_type": N_("must be an object"),
    "model_type": N_("must be an object"),
    "model_attributes_type": N_("must be an object"),
    "enum": N_("must be one of {expected}"),
    "literal_error": N_("must be one of {expected}"),
    "date_type": N_("must be a date (YYYY-MM-DD)"),
    "date_parsing": N_("must be a date (YYYY-MM-DD)"),
    "date_from_datetime_parsing": N_("must be a date (YYYY-MM-DD)"),
    "datetime_type": N_("must be a date and time"),
    "datetime_parsing": N_("must be a date and time"),
    "datetime_from_date_parsing": N_("must be a date and time"),
    "uuid_type": N_("must be a UUID"),
    "uuid_parsing": N_("must be a UUID"),
    "json_invalid": N_("is not valid JSON"),
    "json_type": N_("is not valid JSON"),
    "value_error": N_("is not valid: {error}"),
    "assertion_error": N_("is not valid: {error}"),
}

WHERE: dict[str, str] = {
    "body": N_("body field {field}"),
    "query": N_("query parameter {field}"),
    "path": N_("path parameter {field}"),
    "header": N_("header {field}"),
    "cookie": N_("cookie {field}"),
}


def field_name(loc: Sequence[Any]) -> tuple[str, str]:
    """(where, dotted field path) of an error's ``loc``: ``("body", "officers.2")``."""
    where = str(loc[0]) if loc else "body"
    rest = [str(p) for p in loc[1:]] if loc and where in WHERE else [str(p) for p in loc]
    if where not in WHERE:
        where = "body"
    return where, ".".join(rest)


def problem(error: Mapping[str, Any]) -> str:
    """One validation error in the active language: ``body field title: is required``."""
    where, field = field_name(error.get("loc", ()))
    ctx = {k: str(v) for k, v in (error.get("ctx") or {}).items()}
    if error.get("type") in ("value_error", "assertion_error") and "error" in ctx:
        # our own validators raise ValueError with a message already in the request's language
        ctx["error"] = ctx["error"].removeprefix("Value error, ")
    template = MESSAGES.get(str(error.get("type", "")))
    try:
        text = _(template).format(**ctx) if template else str(error.get("msg", ""))
    except (KeyError, IndexError, ValueError):
        text = str(error.get("msg", ""))
    if not field:  # the whole body (e.g. it is not JSON, or not an object)
        return _("request body: {problem}").format(problem=text)
    return _("{field}: {problem}").format(field=_(WHERE[where]).format(field=field), problem=text)


def detail(errors: Sequence[Mapping[str, Any]]) -> str:
    """Every problem of a request, joined: the ``detail`` of a 422 answer."""
    problems = _("; ").join(problem(e) for e in errors[:20])
    if len(errors) > 20:
        problems += _("; ") + _("and {count} more").format(count=len(errors) - 20)
    return _("invalid request: {problems}").format(problems=problems)

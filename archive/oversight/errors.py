"""Errors of oversight."""

from archive.errors import InvalidInput


class InvalidQuery(InvalidInput):
    code = "oversight.invalid_query"
    http_status = 422

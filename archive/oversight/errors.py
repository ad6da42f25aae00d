"""Errors of oversight."""

from archive.errors import InvalidInput


class InvalidQuery(InvalidInput):
    http_status = 422

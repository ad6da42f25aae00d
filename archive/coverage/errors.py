"""Errors of the recording-item list and coverage."""

from archive.errors import InvalidInput


class InvalidActivity(InvalidInput):
    """An unknown activity, an exception the list does not allow, an empty reason: 422."""

    code = "coverage.invalid_activity"

    http_status = 422

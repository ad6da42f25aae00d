"""Errors of restricted records."""

from archive.errors import Concealed, InvalidInput


class InvalidRestriction(InvalidInput):
    code = "restricted.invalid"
    http_status = 422


class RestrictedNotFound(Concealed):
    """A restricted item the caller holds no grant for: answered as if it did not exist."""

    code = "not_found"  # concealed: the same code as a real "not found"

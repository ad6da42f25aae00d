"""Errors of parties."""

from archive.errors import InvalidInput, NotFound


class InvalidParty(InvalidInput):
    http_status = 422


class PartyNotFound(NotFound):
    pass

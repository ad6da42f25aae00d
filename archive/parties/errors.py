"""Errors of parties."""

from archive.errors import InvalidInput, NotFound


class InvalidParty(InvalidInput):
    code = "party.invalid"
    http_status = 422


class PartyNotFound(NotFound):
    code = "party.not_found"

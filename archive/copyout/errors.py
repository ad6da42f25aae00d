"""Errors of copy-out requests."""

from archive.errors import Conflict, Forbidden, InvalidInput


class InvalidRequest(InvalidInput):
    http_status = 422


class NotApproved(Forbidden):
    """An export or original download without an approved request of the caller's for that item."""


class OwnRequest(Forbidden):
    """The requester cannot approve their own request."""


class AlreadyDecided(Conflict):
    pass

"""Errors of copy-out requests."""

from archive.errors import Conflict, Forbidden, InvalidInput


class InvalidRequest(InvalidInput):
    code = "copyout.invalid"
    http_status = 422


class NotApproved(Forbidden):
    """An export or original download without an approved request of the caller's for that item."""

    code = "copyout.not_approved"


class OwnRequest(Forbidden):
    """The requester cannot approve their own request."""

    code = "copyout.own_request"


class AlreadyDecided(Conflict):
    code = "copyout.decided"

"""Errors of two-person approval."""

from archive.errors import Conflict, Forbidden, InvalidInput, NotFound


class InvalidApproval(InvalidInput):
    code = "approval.invalid"
    http_status = 422


class ApprovalNotFound(NotFound):
    code = "approval.not_found"


class OwnRequest(Forbidden):
    """Whoever asked cannot approve or reject their own request."""

    code = "approval.own_request"


class AlreadyDecided(Conflict):
    code = "approval.decided"


class Expired(Conflict):
    code = "approval.expired"


class Duplicate(Conflict):
    """Someone else already asked for the same thing; it awaits a decision."""

    code = "approval.duplicate"


class Stale(Conflict):
    """What the request was about changed since it was made (the policy it replaces, for one)."""

    code = "approval.stale"

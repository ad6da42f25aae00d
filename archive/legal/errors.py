"""Legal-review errors: each maps to one HTTP status through the archive's single handler."""

from __future__ import annotations

from archive.errors import Conflict, Forbidden, InvalidInput, NotFound


class InvalidSubmission(InvalidInput):
    """A proposed decision, answer or opinion the legal office cannot accept as sent (422)."""

    http_status = 422
    code = "legal.invalid_submission"


class InvalidCatalogue(InvalidInput):
    http_status = 422
    code = "legal.invalid_catalogue"


class SubmissionNotFound(NotFound):
    code = "legal.submission_not_found"


class StaleSubmission(Conflict):
    """The submission was withdrawn, superseded or already decided (409): act on the current one."""

    code = "legal.stale_submission"


class ReviewerNotIndependent(Forbidden):
    """The reviewer handled the case, submitted it or wrote one of its records (403)."""

    code = "legal.reviewer_not_independent"


class GateClosed(Conflict):
    """The case may not reach a decision: no proposed decision, or no approval of the current one."""

    code = "legal.gate_closed"

    def __init__(self, message: str, case_id: str = "") -> None:
        super().__init__(message)
        self.case_id = case_id

"""Case errors: subclasses of the archive's one hierarchy, so the API maps them without knowing cases."""

from archive.errors import Conflict, InvalidInput, NotFound


class CaseNotFound(NotFound):
    """No such case, or one the caller may not see: the two answer alike, so existence is not disclosed."""

    code = "case.not_found"


class DuplicateCaseNumber(Conflict):
    code = "case.duplicate_number"


class InvalidRecord(InvalidInput):
    code = "case.invalid_record"


class CaseClosed(Conflict):
    """A closed case is read-only until a records manager reopens it (issue 10); 409."""

    code = "case.closed"


class RecordOutOfBounds(InvalidRecord):
    """A well-formed record the auto-link rule's bounds refuse (issue 10): a window longer than the
    configured maximum, or an officer who is not on the case. 422, naming the limit."""

    code = "case.record_out_of_bounds"
    http_status = 422

"""Case errors: subclasses of the archive's one hierarchy, so the API maps them without knowing cases."""

from archive.errors import Conflict, InvalidInput, NotFound


class CaseNotFound(NotFound):
    """No such case, or one the caller may not see: the two answer alike, so existence is not disclosed."""

    code = "case.not_found"


class DuplicateCaseNumber(Conflict):
    code = "case.duplicate_number"


class InvalidRecord(InvalidInput):
    code = "case.invalid_record"

"""Case errors: subclasses of the archive's one hierarchy, so the API maps them without knowing cases."""

from archive.errors import Conflict, InvalidInput, NotFound


class CaseNotFound(NotFound):
    """No such case, or one the caller may not see: the two answer alike, so existence is not disclosed."""


class DuplicateCaseNumber(Conflict):
    pass


class InvalidRecord(InvalidInput):
    pass

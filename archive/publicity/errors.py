"""Publicity errors: each names what was refused and why, for the person who reads it."""

from __future__ import annotations

from archive.errors import Conflict, InvalidInput, NotFound


class UnqualifiedOfficer(InvalidInput):
    """A text record names, as an enforcing officer, someone without a valid certificate on its
    date ("未经执法资格考试合格…一律不得从事执法活动")."""

    code = "publicity.unqualified_officer"

    http_status = 422


class RosterImportError(InvalidInput):
    """A CSV row is malformed: the whole file is refused, nothing imported."""

    code = "publicity.roster_invalid"

    http_status = 422


class NoDecision(InvalidInput):
    """The case has no decision document to publish."""

    code = "publicity.no_decision"

    http_status = 422


class ResidualPersonalData(InvalidInput):
    """The text to be published still contains a detected ID number nobody overrode with a reason."""

    code = "publicity.personal_data_left"

    http_status = 422


class Restricted(Conflict):
    """The decision or its record is marked state secret, trade secret or personal privacy."""

    code = "publicity.restricted"


class DigestMismatch(Conflict):
    """The approval names a SHA-256 other than the stored redacted version's."""

    code = "publicity.digest_mismatch"


class WrongState(Conflict):
    code = "publicity.wrong_state"


class ConcurrentChange(Conflict):
    """Two people wrote the next version of the same thing at once; the other one was stored first."""

    code = "publicity.concurrent_change"


class DecisionNotFound(NotFound):
    code = "publicity.decision_not_found"


class InspectionNotFound(NotFound):
    code = "publicity.inspection_not_found"


class InvalidField(InvalidInput):
    """A field of a performance record or an inspection result is refused (a date in the future, an
    empty text): 422, and the message starts with the field's name, as schema errors do."""

    code = "publicity.invalid_field"

    http_status = 422

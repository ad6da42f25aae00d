"""Publicity errors: each names what was refused and why, for the person who reads it."""

from __future__ import annotations

from archive.errors import Conflict, InvalidInput, NotFound


class UnqualifiedOfficer(InvalidInput):
    """A text record names, as an enforcing officer, someone without a valid certificate on its
    date ("未经执法资格考试合格…一律不得从事执法活动")."""

    http_status = 422


class RosterImportError(InvalidInput):
    """A CSV row is malformed: the whole file is refused, nothing imported."""

    http_status = 422


class NoDecision(InvalidInput):
    """The case has no decision document to publish."""

    http_status = 422


class ResidualPersonalData(InvalidInput):
    """The text to be published still contains a detected ID number nobody overrode with a reason."""

    http_status = 422


class Restricted(Conflict):
    """The decision or its record is marked state secret, trade secret or personal privacy."""


class DigestMismatch(Conflict):
    """The approval names a SHA-256 other than the stored redacted version's."""


class WrongState(Conflict):
    pass


class DecisionNotFound(NotFound):
    pass

"""Legal review of major enforcement decisions: the catalogue, submissions, the checklist, opinions,
collective discussion, deadlines and the gate's question ("may this case reach a decision?").

Services take the session, the acting user and inputs; they ``flush`` and never commit. Every step is
a custody event on the case (``subject_type="case"``), so the case export carries it with its proof.
All checks run before the first write: a refused request leaves nothing behind.

The work is split by concern (``common``, ``catalogue_versions``, ``submissions``, ``review``,
``status`` with the deadlines, ``decision_gate``); this module is the one name callers import.
"""

from archive.legal.catalogue_versions import (
    _catalogue_row,
    catalogue_public,
    catalogue_version,
    current_catalogue,
    set_catalogue,
)
from archive.legal.common import (
    DEFAULT_TIMEZONE,
    LIVE,
    MAX_REFS,
    MAX_TEXT,
    _case,
    _log,
    case_marks,
)
from archive.legal.decision_gate import (
    decision_blocker,
    record_gate_refusal,
    require_decision_allowed,
)
from archive.legal.review import (
    OpinionInput,
    _latest_answers,
    _require_independent,
    _reviewable,
    answer,
    decide,
    escalate,
    record_collective,
)
from archive.legal.status import (
    _today,
    escalation_public,
    mark_public,
    opinion_public,
    overdue,
    review_status,
    submission_public,
)
from archive.legal.submissions import (
    ProposedDecision,
    _amounts,
    _close,
    _ref,
    _transition,
    digest,
    digest_document,
    get_submission,
    latest_submission,
    mark_case,
    submit,
    withdraw,
)

__all__ = [
    "DEFAULT_TIMEZONE",
    "LIVE",
    "MAX_REFS",
    "MAX_TEXT",
    "OpinionInput",
    "ProposedDecision",
    "_amounts",
    "_case",
    "_catalogue_row",
    "_close",
    "_latest_answers",
    "_log",
    "_ref",
    "_require_independent",
    "_reviewable",
    "_today",
    "_transition",
    "answer",
    "case_marks",
    "catalogue_public",
    "catalogue_version",
    "current_catalogue",
    "decide",
    "decision_blocker",
    "digest",
    "digest_document",
    "escalate",
    "escalation_public",
    "get_submission",
    "latest_submission",
    "mark_case",
    "mark_public",
    "opinion_public",
    "overdue",
    "record_collective",
    "record_gate_refusal",
    "require_decision_allowed",
    "review_status",
    "set_catalogue",
    "submission_public",
    "submit",
    "withdraw",
]

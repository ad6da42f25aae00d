"""Shared by the legal-review services: the custody-log helper, limits, the live states and
the case look-ups."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from archive import events
from archive.access import actor
from archive.accounts.models import User
from archive.cases import services as cases
from archive.cases.models import Case
from archive.clock import Clock
from archive.legal.models import (
    LegalCaseMark,
    SubmissionState,
)

DEFAULT_TIMEZONE = "Asia/Shanghai"
MAX_TEXT = 100_000
MAX_REFS = 500
# A submission that is still the case's proposed decision (not replaced, not withdrawn).
LIVE = frozenset(
    {
        SubmissionState.PENDING,
        SubmissionState.NOT_REQUIRED,
        SubmissionState.APPROVED,
        SubmissionState.RETURNED,
        SubmissionState.DISAPPROVED,
    }
)


def _log(
    session: Session,
    user: User | str,
    action: str,
    case_id: str,
    clock: Clock,
    addr: str = "",
    **details: Any,
) -> None:
    events.record(
        session,
        actor=actor(user),
        action=action,
        subject_type="case",
        subject_id=case_id,
        client_addr=addr,
        details=details,
        clock=clock,
    )


def _case(session: Session, user: User, case_id: str) -> Case:
    return cases.get_case(session, user, case_id)


def case_marks(session: Session, case_id: str) -> list[LegalCaseMark]:
    return list(
        session.exec(
            select(LegalCaseMark).where(LegalCaseMark.case_id == case_id).order_by(col(LegalCaseMark.id))
        )
    )

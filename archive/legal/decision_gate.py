"""The gate's question: may this case reach a decision now? (The flush hook is in ``gate``.)"""

from __future__ import annotations

from sqlmodel import Session, select

from archive import events
from archive.i18n import _
from archive.legal.common import case_marks
from archive.legal.errors import GateClosed
from archive.legal.models import (
    LegalOpinion,
    LegalSubmission,
    Opinion,
    SubmissionState,
)
from archive.legal.submissions import (
    digest,
    latest_submission,
)
from archive.models import Outcome

# --------------------------------------------------------------------------- the gate


def decision_blocker(session: Session, case_id: str) -> tuple[str | None, LegalSubmission | None]:
    """Why the case may not reach a decision now (None: it may), and the submission it would decide.

    The rule: a case reaches the decision stage only through a proposed decision; when the catalogue
    says that decision needs legal review, only an approval of exactly its current version (the
    approval's SHA-256 equals the version's, and the version still hashes to it) lets it through."""
    sub = latest_submission(session, case_id)
    if sub is None or sub.state in (SubmissionState.WITHDRAWN,):
        return (
            _(
                "no proposed decision: a case reaches the decision stage only through a proposed decision "
                "submitted for legal review classification"
            ),
            None,
        )
    marks = sorted({m.mark for m in case_marks(session, case_id)})
    if marks != sorted(sub.marks):
        # Marks written without the service (which closes the submission) still count.
        return (
            _(
                "legal review: the case's marks ({marks}) changed after proposed decision version {version} "
                "was classified; submit it again"
            ).format(marks=", ".join(marks) or "-", version=sub.version),
            sub,
        )
    if sub.state is SubmissionState.NOT_REQUIRED and not sub.required:
        return None, sub
    rule = sub.rule_id or "?"
    if sub.state is not SubmissionState.APPROVED:
        return (
            _(
                "legal review required by catalogue rule {rule}: proposed decision version {version} "
                "is {state}, not approved"
            ).format(rule=rule, version=sub.version, state=sub.state),
            sub,
        )
    opinion = session.exec(select(LegalOpinion).where(LegalOpinion.submission_id == sub.id)).first()
    if (
        opinion is None
        or opinion.outcome is not Opinion.APPROVE
        or opinion.digest != sub.digest
        or digest(sub) != sub.digest
    ):
        return (
            _(
                "legal review required by catalogue rule {rule}: the approval does not match "
                "proposed decision version {version} (SHA-256 differs)"
            ).format(rule=rule, version=sub.version),
            sub,
        )
    return None, sub


def require_decision_allowed(session: Session, case_id: str) -> LegalSubmission:
    why, sub = decision_blocker(session, case_id)
    if why is not None or sub is None:
        raise GateClosed(why or _("no proposed decision"), case_id)
    return sub


def record_gate_refusal(
    session: Session, user_name: str | None, exc: GateClosed, request: str, addr: str = ""
) -> None:
    """The gate's refusal on the case's record (written after the refused unit of work rolled back):
    who tried to reach a decision without an approval, how, and why it was refused."""
    events.record(
        session,
        actor=f"user:{user_name}" if user_name else "anonymous",
        action="legal.gate.refused",
        subject_type="case",
        subject_id=exc.case_id[:64],
        outcome=Outcome.DENIED,
        client_addr=addr,
        details={"request": request[:300], "reason": str(exc)[:500]},
    )

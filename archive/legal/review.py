"""The review: checklist answers, the opinion, escalation and collective discussion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlmodel import Session, col, select

from archive.access import Permission, authorize
from archive.accounts.models import User
from archive.cases import services as cases
from archive.cases.models import Case, CaseReviewer, RecordOfficer, TextRecord
from archive.clock import Clock, utcnow
from archive.errors import IntegrityError
from archive.i18n import _
from archive.legal.catalogue_versions import catalogue_version
from archive.legal.common import (
    LIVE,
    MAX_TEXT,
    _case,
    _log,
)
from archive.legal.errors import (
    InvalidSubmission,
    ReviewerNotIndependent,
    StaleSubmission,
)
from archive.legal.models import (
    REVIEWER_ATTESTATION,
    Answer,
    CollectiveOutcome,
    LegalAnswer,
    LegalEscalation,
    LegalOpinion,
    LegalSubmission,
    Opinion,
    SubmissionState,
)
from archive.legal.submissions import (
    _close,
    _transition,
    digest,
    get_submission,
)

# --------------------------------------------------------------------------- review


def _require_independent(session: Session, user: User, sub: LegalSubmission) -> None:
    """Nobody reviews a case they handled, submitted or wrote a record in (403 with the reason)."""
    case = session.get(Case, sub.case_id)
    reasons: list[str] = []
    if case is not None and case.created_by == user.name:
        reasons.append(_("opened the case"))
    if session.get(CaseReviewer, (sub.case_id, user.name)) is not None:
        reasons.append(_("is assigned to handle the case"))
    submitted = session.exec(
        select(LegalSubmission.id).where(
            LegalSubmission.case_id == sub.case_id, LegalSubmission.submitted_by == user.name
        )
    ).first()
    if submitted is not None:
        reasons.append(_("submitted a proposed decision of the case"))
    wrote = session.exec(
        select(TextRecord.id).where(
            TextRecord.case_id == sub.case_id,
            (col(TextRecord.created_by) == user.name) | (col(TextRecord.author) == user.name),
        )
    ).first()
    named = session.exec(
        select(RecordOfficer.badge)
        .join(TextRecord, col(TextRecord.id) == col(RecordOfficer.record_row))
        .where(TextRecord.case_id == sub.case_id, RecordOfficer.badge == user.name)
    ).first()
    if wrote is not None or named is not None:
        reasons.append(_("wrote or is named in a record of the case"))
    if reasons:
        raise ReviewerNotIndependent(
            _("{name} may not review this case: {why}").format(name=user.name, why="; ".join(reasons))
        )


def _reviewable(sub: LegalSubmission) -> None:
    if sub.state is SubmissionState.PENDING:
        return
    what = {
        SubmissionState.WITHDRAWN: _("was withdrawn"),
        SubmissionState.SUPERSEDED: _("was superseded by a later version"),
        SubmissionState.VOIDED: _("was superseded by a later version"),
        SubmissionState.NOT_REQUIRED: _("needs no legal review"),
    }.get(sub.state, _("has already been decided ({state})").format(state=sub.state))
    raise StaleSubmission(
        _("proposed decision version {version} {what}: review the current one").format(
            version=sub.version, what=what
        )
    )


def answer(
    session: Session,
    user: User,
    submission_id: str,
    point: str,
    result: str,
    note: str = "",
    *,
    clock: Clock = utcnow,
    addr: str = "",
) -> LegalAnswer:
    """Answer one checklist point: pass, fail or not applicable, with a note (required unless pass)."""
    authorize(user, Permission.LEGAL_REVIEW_DECIDE)
    sub = get_submission(session, user, submission_id, lock=True)
    _reviewable(sub)
    _require_independent(session, user, sub)
    catalogue = catalogue_version(session, sub.catalogue_version)
    if point not in catalogue.point_keys:
        raise InvalidSubmission(
            _("unknown checklist point {point!r}; the points are: {known}").format(
                point=point[:64], known=", ".join(catalogue.point_keys)
            )
        )
    try:
        value = Answer(result)
    except ValueError as exc:
        raise InvalidSubmission(
            _("answer {result!r} for {point}: use pass, fail or n/a").format(
                result=str(result)[:20], point=point
            )
        ) from exc
    note = note.strip()
    if value is not Answer.PASS and not note:
        raise InvalidSubmission(
            _("a {result} answer to {point} needs a note").format(result=value, point=point)
        )
    if len(note) > 4000:
        raise InvalidSubmission(_("a note is at most 4000 characters"))
    row = LegalAnswer(
        submission_id=sub.id, point=point, result=value, note=note, reviewer=user.name, answered_at=clock()
    )
    session.add(row)
    session.flush()
    _log(
        session,
        user,
        "legal.answer",
        sub.case_id,
        clock,
        addr,
        submission=sub.id,
        version=sub.version,
        point=point,
        result=value,
        note=note,
    )
    return row


def _latest_answers(session: Session, submission_id: str) -> dict[str, LegalAnswer]:
    rows = session.exec(
        select(LegalAnswer).where(LegalAnswer.submission_id == submission_id).order_by(col(LegalAnswer.id))
    )
    return {a.point: a for a in rows}


@dataclass(frozen=True)
class OpinionInput:
    outcome: str
    reasons: str
    attest: bool = False
    authority: str | None = None  # the higher authority that reviewed (报上级)
    answered_by: str | None = None  # who answered there
    expected_lock_version: int | None = None


def decide(
    session: Session,
    user: User,
    submission_id: str,
    data: OpinionInput,
    *,
    clock: Clock = utcnow,
    addr: str = "",
) -> LegalOpinion:
    """Give the opinion: approve (binding the submission's SHA-256), return for more material, or
    disapprove, with reasons. Approval needs every checklist point answered and none failed."""
    authorize(user, Permission.LEGAL_REVIEW_DECIDE)
    sub = get_submission(session, user, submission_id, lock=True)
    _reviewable(sub)
    if data.expected_lock_version is not None and data.expected_lock_version != sub.lock_version:
        raise StaleSubmission(
            _("proposed decision version {version} changed since you read it; reload it").format(
                version=sub.version
            )
        )
    _require_independent(session, user, sub)
    try:
        outcome = Opinion(data.outcome)
    except ValueError as exc:
        raise InvalidSubmission(
            _("opinion {outcome!r}: use approve, return or disapprove").format(outcome=str(data.outcome)[:20])
        ) from exc
    reasons = data.reasons.strip()
    if not reasons:
        raise InvalidSubmission(_("the opinion text (reasons) is missing"))
    if len(reasons) > MAX_TEXT:
        raise InvalidSubmission(_("the opinion text is at most {n} characters").format(n=MAX_TEXT))
    if not data.attest:
        raise InvalidSubmission(_("the reviewer must attest that they answer for the opinion (attest)"))
    authority = (data.authority or "").strip() or None
    answered_by = (data.answered_by or "").strip() or None
    if sub.higher_authority and (authority is None or answered_by is None):
        raise InvalidSubmission(
            _(
                "rule {rule} sends this review to the higher authority: name the authority and who answered"
            ).format(rule=sub.rule_id)
        )
    catalogue = catalogue_version(session, sub.catalogue_version)
    answers = _latest_answers(session, sub.id)
    if outcome is Opinion.APPROVE:
        unanswered = [p for p in catalogue.point_keys if p not in answers]
        failed = [p for p in catalogue.point_keys if p in answers and answers[p].result is Answer.FAIL]
        if failed:
            raise InvalidSubmission(
                _("approval refused: failed checklist points: {points}").format(points=", ".join(failed))
            )
        if unanswered:
            raise InvalidSubmission(
                _("approval refused: unanswered checklist points: {points}").format(
                    points=", ".join(unanswered)
                )
            )
    if digest(sub) != sub.digest:
        raise IntegrityError(
            _(
                "proposed decision version {version} no longer matches its SHA-256: "
                "the stored row was altered"
            ).format(version=sub.version)
        )
    checklist = [
        {
            "point": p,
            "result": answers[p].result.value,
            "note": answers[p].note,
            "reviewer": answers[p].reviewer,
        }
        for p in catalogue.point_keys
        if p in answers
    ]
    state = {
        Opinion.APPROVE: SubmissionState.APPROVED,
        Opinion.RETURN: SubmissionState.RETURNED,
        Opinion.DISAPPROVE: SubmissionState.DISAPPROVED,
    }[outcome]
    _transition(session, sub, state, user, clock, reasons[:2000])
    row = LegalOpinion(
        submission_id=sub.id,
        outcome=outcome,
        reasons=reasons,
        reviewer=user.name,
        attestation=REVIEWER_ATTESTATION,
        digest=sub.digest,
        checklist=checklist,
        authority=authority,
        answered_by=answered_by,
        decided_at=clock(),
    )
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except DBIntegrityError as exc:  # the unique key: another opinion won the race
        raise StaleSubmission(
            _("proposed decision version {version} has already been decided").format(version=sub.version)
        ) from exc
    _log(
        session,
        user,
        "legal.opinion",
        sub.case_id,
        clock,
        addr,
        submission=sub.id,
        version=sub.version,
        outcome=outcome,
        digest=sub.digest,
        reasons=reasons,
        checklist=checklist,
        authority=authority,
        answered_by=answered_by,
        attestation=REVIEWER_ATTESTATION,
    )
    return row


# --------------------------------------------------------------------------- disagreement


def escalate(
    session: Session, user: User, submission_id: str, reason: str, *, clock: Clock = utcnow, addr: str = ""
) -> LegalEscalation:
    """The handling side does not accept a return or disapproval: collective discussion (集体讨论)."""
    authorize(user, Permission.LEGAL_SUBMIT)
    sub = get_submission(session, user, submission_id, lock=True)
    cases.require_writer(session, user, _case(session, user, sub.case_id))
    if sub.state not in (SubmissionState.RETURNED, SubmissionState.DISAPPROVED):
        raise StaleSubmission(
            _(
                "only a returned or disapproved proposed decision can be escalated "
                "(version {version} is {state})"
            ).format(version=sub.version, state=sub.state)
        )
    reason = reason.strip()
    if not reason:
        raise InvalidSubmission(_("an escalation needs the reasons the handling side disagrees"))
    if session.exec(select(LegalEscalation.id).where(LegalEscalation.submission_id == sub.id)).first():
        raise StaleSubmission(
            _("proposed decision version {version} is already escalated").format(version=sub.version)
        )
    row = LegalEscalation(submission_id=sub.id, reason=reason, requested_by=user.name, requested_at=clock())
    session.add(row)
    session.flush()
    _log(
        session,
        user,
        "legal.escalate",
        sub.case_id,
        clock,
        addr,
        submission=sub.id,
        version=sub.version,
        reason=reason,
    )
    return row


def record_collective(
    session: Session,
    user: User,
    submission_id: str,
    outcome: str,
    reasons: str,
    participants: Sequence[str],
    *,
    clock: Clock = utcnow,
    addr: str = "",
) -> LegalEscalation:
    """An approver records what collective discussion decided, with reasons. It stands beside the
    review and never replaces it: the gate still needs an approval of the version decided."""
    authorize(user, Permission.LEGAL_COLLECTIVE_DECIDE)
    sub = get_submission(session, user, submission_id, lock=True)
    row = session.exec(select(LegalEscalation).where(LegalEscalation.submission_id == sub.id)).first()
    if row is None:
        raise StaleSubmission(
            _("proposed decision version {version} was not escalated").format(version=sub.version)
        )
    if row.outcome is not None:
        raise StaleSubmission(
            _("collective discussion of version {version} is already recorded").format(version=sub.version)
        )
    try:
        value = CollectiveOutcome(outcome)
    except ValueError as exc:
        raise InvalidSubmission(
            _("outcome {outcome!r}: use {known}").format(
                outcome=str(outcome)[:30], known=", ".join(o.value for o in CollectiveOutcome)
            )
        ) from exc
    reasons = reasons.strip()
    people = sorted({p.strip() for p in participants if p.strip()})
    if not reasons:
        raise InvalidSubmission(_("the outcome of collective discussion needs its reasons"))
    if not people or any(len(p) > 200 for p in people):
        raise InvalidSubmission(_("name the participants of the collective discussion"))
    row.outcome, row.outcome_reasons, row.participants = value, reasons, people
    row.decided_by, row.decided_at = user.name, clock()
    session.add(row)
    session.flush()
    if value is CollectiveOutcome.WITHDRAW and sub.state in LIVE:
        _close(session, user, sub, clock=clock, addr=addr, reason=f"collective discussion: {reasons[:1900]}")
    _log(
        session,
        user,
        "legal.collective",
        sub.case_id,
        clock,
        addr,
        submission=sub.id,
        version=sub.version,
        outcome=value,
        reasons=reasons,
        participants=people,
    )
    return row

"""A case's review status, the public views and the deadlines (the overdue list)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from archive.access import Permission, authorize
from archive.accounts.models import User
from archive.cases.models import Case
from archive.clock import Clock, as_utc, utcnow
from archive.i18n import _
from archive.legal.catalogue import (
    MARKS,
    Catalogue,
    Classification,
    Facts,
    classify,
    default_catalogue,
)
from archive.legal.catalogue_versions import (
    catalogue_version,
    current_catalogue,
)
from archive.legal.common import (
    DEFAULT_TIMEZONE,
    _case,
    case_marks,
)
from archive.legal.models import (
    ANSWER_LABELS_ZH,
    COLLECTIVE_LABELS,
    OPINION_LABELS,
    STATUS_LABELS,
    ChecklistItem,
    EscalationPublic,
    LegalCaseMark,
    LegalEscalation,
    LegalOpinion,
    LegalReviewPublic,
    LegalSubmission,
    MarkPublic,
    OpinionPublic,
    OverdueItem,
    OverdueList,
    ReviewStatus,
    SubmissionPublic,
    SubmissionState,
)
from archive.legal.review import _latest_answers
from archive.workdays import local_date, provisional
from archive.workdays.services import current_calendar

# --------------------------------------------------------------------------- status


def _today(clock: Clock, timezone: str) -> date:
    return local_date(clock(), timezone)


def submission_public(s: LegalSubmission, catalogue: Catalogue | None = None) -> SubmissionPublic:
    kind = (catalogue or default_catalogue()).decision_kinds.get(s.decision_kind)
    return SubmissionPublic.model_validate(
        {
            **s.model_dump(),
            "decision_kind_zh": kind.label_zh if kind else s.decision_kind,
            "due_note": provisional.note(s.due_missing_years) if s.due_provisional else "",
        }
    )


def review_status(
    session: Session, user: User, case_id: str, *, clock: Clock = utcnow, timezone: str = DEFAULT_TIMEZONE
) -> LegalReviewPublic:
    """Whether the case needs review and why, where its review stands, its checklist and deadline."""
    authorize(user, Permission.LEGAL_READ)
    case = _case(session, user, case_id)
    history = list(
        session.exec(
            select(LegalSubmission)
            .where(LegalSubmission.case_id == case.id)
            .order_by(col(LegalSubmission.version).desc())
        )
    )
    marks = case_marks(session, case.id)
    current = history[0] if history and history[0].state is not SubmissionState.WITHDRAWN else None
    catalogue = (
        catalogue_version(session, current.catalogue_version) if current else current_catalogue(session)
    )
    escalation = opinion = None
    checklist: list[ChecklistItem] = []
    if current is None:
        verdict = classify(catalogue, Facts(None, None, False, frozenset(m.mark for m in marks)))
        status = ReviewStatus.AWAITING_SUBMISSION
        explanation = (verdict.explain() + _("; ") if verdict.required else "") + _(
            "no proposed decision yet: the catalogue classifies it when it is submitted"
        )
    else:
        verdict = Classification(
            current.required,
            next((r for r in catalogue.rules if r.id == current.rule_id), None),
            list(current.matched_rules),
            current.higher_authority,
            current.catalogue_version,
        )
        explanation = verdict.explain()
        escalation = session.exec(
            select(LegalEscalation).where(LegalEscalation.submission_id == current.id)
        ).first()
        opinion = session.exec(select(LegalOpinion).where(LegalOpinion.submission_id == current.id)).first()
        status = {
            SubmissionState.NOT_REQUIRED: ReviewStatus.NOT_REQUIRED,
            SubmissionState.PENDING: ReviewStatus.PENDING,
            SubmissionState.APPROVED: ReviewStatus.APPROVED,
            SubmissionState.RETURNED: ReviewStatus.RETURNED,
            SubmissionState.DISAPPROVED: ReviewStatus.DISAPPROVED,
            SubmissionState.VOIDED: ReviewStatus.VOIDED,
        }.get(current.state, ReviewStatus.PENDING)
        if escalation is not None and status in (ReviewStatus.RETURNED, ReviewStatus.DISAPPROVED):
            status = ReviewStatus.ESCALATED
        if current.required:
            answers = _latest_answers(session, current.id)
            for p in catalogue.checklist:
                a = answers.get(p.key)
                checklist.append(
                    ChecklistItem(
                        point=p.key,
                        label=_(p.label),
                        label_zh=p.label_zh,
                        result=a.result if a else None,
                        result_zh=ANSWER_LABELS_ZH[a.result] if a else None,
                        note=a.note if a else "",
                        reviewer=a.reviewer if a else None,
                        answered_at=a.answered_at if a else None,
                    )
                )
    due = current.due if current is not None else None
    overdue = bool(status is ReviewStatus.PENDING and due is not None and due < _today(clock, timezone))
    late: int | None = None
    if overdue and due is not None:
        # Counted like the due date (a day of a year the calendar does not know counts): never refused.
        late = current_calendar(session).working_days_between(due, _today(clock, timezone), provisional=True)
    missing = list(current.due_missing_years) if current is not None and current.due_provisional else []
    label, label_zh = STATUS_LABELS[status]
    return LegalReviewPublic(
        case_id=case.id,
        case_number=case.number,
        required=verdict.required,
        rule=verdict.rule.id if verdict.rule else None,
        rule_label_zh=verdict.rule.label_zh if verdict.rule else None,
        matched_rules=verdict.matched,
        explanation=explanation,
        higher_authority=verdict.higher_authority,
        catalogue_version=verdict.catalogue_version,
        status=status,
        status_label=_(label),
        status_zh=label_zh,
        due=due,
        due_provisional=bool(missing),
        due_missing_years=missing,
        due_weekdays=current.due_weekdays if current is not None and missing else None,
        due_note=provisional.note(missing),
        due_explanation=provisional.explanation(missing),
        overdue=overdue,
        working_days_overdue=late,
        submission=submission_public(current, catalogue) if current else None,
        checklist=checklist,
        opinion=opinion_public(opinion) if opinion else None,
        escalation=escalation_public(escalation) if escalation else None,
        marks=[mark_public(m) for m in marks],
        history=[submission_public(s, catalogue) for s in history],
    )


def mark_public(m: LegalCaseMark) -> MarkPublic:
    return MarkPublic(mark=m.mark, label_zh=MARKS[m.mark], reason=m.reason, set_by=m.set_by, set_at=m.set_at)


def opinion_public(o: LegalOpinion) -> OpinionPublic:
    label, zh = OPINION_LABELS[o.outcome]
    return OpinionPublic.model_validate({**o.model_dump(), "outcome_label": _(label), "outcome_zh": zh})


def escalation_public(e: LegalEscalation) -> EscalationPublic:
    label, zh = COLLECTIVE_LABELS[e.outcome] if e.outcome else (None, None)
    return EscalationPublic.model_validate(
        {**e.model_dump(), "outcome_label": _(label) if label else None, "outcome_zh": zh}
    )


def overdue(
    session: Session,
    user: User,
    *,
    limit: int = 100,
    offset: int = 0,
    overdue_only: bool = True,
    clock: Clock = utcnow,
    timezone: str = DEFAULT_TIMEZONE,
) -> OverdueList:
    """Pending reviews past their last day (agency-local), oldest deadline first; with
    ``overdue_only=False`` every pending review."""
    authorize(user, Permission.LEGAL_READ_ALL)
    today = _today(clock, timezone)
    where: tuple[Any, ...] = (col(LegalSubmission.state) == SubmissionState.PENDING,)
    if overdue_only:
        where = (*where, col(LegalSubmission.due) < today)
    total = int(session.exec(select(func.count()).select_from(LegalSubmission).where(*where)).one())
    rows = session.exec(
        select(LegalSubmission, Case.number, Case.title)
        .join(Case, col(Case.id) == col(LegalSubmission.case_id))
        .where(*where)
        .order_by(col(LegalSubmission.due), col(LegalSubmission.id))
        .limit(limit)
        .offset(offset)
    ).all()
    items = [
        OverdueItem(
            submission_id=s.id,
            case_id=s.case_id,
            case_number=number,
            case_title=title,
            version=s.version,
            decision_kind=s.decision_kind,
            rule_id=s.rule_id,
            submitted_by=s.submitted_by,
            submitted_at=as_utc(s.submitted_at),
            due=s.due or today,
            due_provisional=s.due_provisional,
            due_missing_years=list(s.due_missing_years),
            due_weekdays=s.due_weekdays,
            due_note=provisional.note(s.due_missing_years) if s.due_provisional else "",
            higher_authority=s.higher_authority,
        )
        for s, number, title in rows
    ]
    return OverdueList(today=today, items=items, total=total)

"""Legal review of major enforcement decisions: the catalogue, submissions, the checklist, opinions,
collective discussion, deadlines and the gate's question ("may this case reach a decision?").

Services take the session, the acting user and inputs; they ``flush`` and never commit. Every step is
a custody event on the case (``subject_type="case"``), so the case export carries it with its proof.
All checks run before the first write: a refused request leaves nothing behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.exc import OperationalError as DBOperationalError
from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, actor, authorize
from archive.accounts.models import User
from archive.cases import services as cases
from archive.cases.models import Case, CaseMedia, CaseReviewer, RecordOfficer, TextRecord
from archive.clock import Clock, as_utc, utcnow
from archive.errors import Conflict, IntegrityError
from archive.i18n import _
from archive.legal.catalogue import (
    MARKS,
    Catalogue,
    Classification,
    Facts,
    classify,
    default_catalogue,
    parse_catalogue,
    required_materials,
)
from archive.legal.errors import (
    GateClosed,
    InvalidSubmission,
    ReviewerNotIndependent,
    StaleSubmission,
    SubmissionNotFound,
)
from archive.legal.models import (
    ANSWER_LABELS_ZH,
    COLLECTIVE_LABELS,
    OPINION_LABELS,
    REVIEWER_ATTESTATION,
    STATUS_LABELS,
    SUBMITTER_ATTESTATION,
    Answer,
    CataloguePublic,
    ChecklistItem,
    CollectiveOutcome,
    EscalationPublic,
    LegalAnswer,
    LegalCaseMark,
    LegalCatalogueVersion,
    LegalEscalation,
    LegalOpinion,
    LegalReviewPublic,
    LegalSubmission,
    MarkPublic,
    Opinion,
    OpinionPublic,
    OverdueItem,
    OverdueList,
    ReviewStatus,
    SubmissionPublic,
    SubmissionState,
)
from archive.models import Outcome
from archive.signing import canonical_json
from archive.workdays import local_date
from archive.workdays.services import current_calendar

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


# --------------------------------------------------------------------------- catalogue


def _catalogue_row(session: Session, version: int | None = None) -> LegalCatalogueVersion | None:
    stmt = select(LegalCatalogueVersion)
    if version is None:
        stmt = stmt.order_by(col(LegalCatalogueVersion.version).desc()).limit(1)
    else:
        stmt = stmt.where(LegalCatalogueVersion.version == version)
    return session.exec(stmt).first()


def current_catalogue(session: Session) -> Catalogue:
    """The catalogue in force: the newest installed version, else the shipped default."""
    row = _catalogue_row(session)
    return parse_catalogue(row.body) if row is not None else default_catalogue()


def catalogue_version(session: Session, version: int) -> Catalogue:
    """The catalogue a submission was classified under (answers are checked against its checklist)."""
    row = _catalogue_row(session, version)
    if row is not None:
        return parse_catalogue(row.body)
    shipped = default_catalogue()
    if shipped.version == version:
        return shipped
    raise IntegrityError(f"legal review catalogue version {version} is not stored")


def catalogue_public(session: Session, user: User) -> CataloguePublic:
    authorize(user, Permission.LEGAL_READ)
    row = _catalogue_row(session)
    if row is None:
        c = default_catalogue()
        return CataloguePublic(
            version=c.version,
            body=c.to_json(),
            created_by="system:default",
            reason="shipped",
            created_at=None,
        )
    return CataloguePublic.model_validate(row.model_dump())


def set_catalogue(
    session: Session, user: User, body: dict[str, Any], reason: str, *, clock: Clock = utcnow, addr: str = ""
) -> LegalCatalogueVersion:
    """Install the next catalogue version (the whole document, with a reason). Submissions already made
    keep the version and rule that classified them."""
    authorize(user, Permission.LEGAL_CATALOGUE_SET)
    reason = reason.strip()
    if not reason:
        raise InvalidSubmission(_("a new catalogue version needs a reason"))
    latest = session.exec(select(func.max(LegalCatalogueVersion.version))).one()
    version = max(int(latest or 0), default_catalogue().version) + 1
    catalogue = parse_catalogue({**body, "version": version})
    row = LegalCatalogueVersion(
        version=version, body=catalogue.to_json(), created_by=user.name, reason=reason, created_at=clock()
    )
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="legal.catalogue.set",
        subject_type="legal-catalogue",
        subject_id=str(version),
        client_addr=addr,
        details={"reason": reason, "rules": [r.id for r in catalogue.rules]},
        clock=clock,
    )
    return row


# --------------------------------------------------------------------------- marks


def _case(session: Session, user: User, case_id: str) -> Case:
    return cases.get_case(session, user, case_id)


def case_marks(session: Session, case_id: str) -> list[LegalCaseMark]:
    return list(
        session.exec(
            select(LegalCaseMark).where(LegalCaseMark.case_id == case_id).order_by(col(LegalCaseMark.id))
        )
    )


def mark_case(
    session: Session,
    user: User,
    case_id: str,
    mark: str,
    reason: str,
    *,
    clock: Clock = utcnow,
    addr: str = "",
) -> LegalCaseMark:
    """Mark a case major by hand (重大公共利益, 重大社会影响, 重大权益, 疑难复杂). A marked case needs
    review whatever its decision kind; a mark set after a submission applies from the next version."""
    authorize(user, Permission.LEGAL_MARK)
    case = _case(session, user, case_id)
    if mark not in MARKS:
        raise InvalidSubmission(
            _("unknown mark {mark!r}; known: {known}").format(mark=mark[:64], known=", ".join(MARKS))
        )
    reason = reason.strip()
    if not reason:
        raise InvalidSubmission(_("a mark needs a reason"))
    if any(m.mark == mark for m in case_marks(session, case.id)):
        raise Conflict(_("case {number} is already marked {mark}").format(number=case.number, mark=mark))
    row = LegalCaseMark(case_id=case.id, mark=mark, reason=reason, set_by=user.name, set_at=clock())
    session.add(row)
    session.flush()
    _log(session, user, "legal.mark", case.id, clock, addr, mark=mark, reason=reason)
    # The current proposed decision was classified without this mark: it must be classified again
    # (the mark may require review, or review by the higher authority). An approval it had is voided.
    live = latest_submission(session, case.id)
    if live is not None and live.state in LIVE:
        why = f"case marked {mark} after version {live.version} was submitted: submit it again"
        _close(session, user, live, clock=clock, addr=addr, reason=why)
        _log(
            session,
            user,
            "legal.withdraw",
            case.id,
            clock,
            addr,
            submission=live.id,
            version=live.version,
            reason=why,
        )
    return row


# --------------------------------------------------------------------------- submissions


@dataclass(frozen=True)
class ProposedDecision:
    """What the handling officer submits (拟作出的决定). ``evidence`` and each material are lists of
    references to the case's own record versions ``{"record_id", "version"}`` or linked media
    ``{"media_id"}``; the ``evidence`` material is the evidence list itself."""

    decision_kind: str
    facts: str
    legal_basis: Sequence[str]
    evidence: Sequence[dict[str, Any]]
    materials: dict[str, Sequence[dict[str, Any]]] = field(default_factory=dict)
    amounts: dict[str, str] = field(default_factory=dict)
    hearing: bool = False
    attest: bool = False  # the submitter answers for the materials


def digest_document(s: LegalSubmission) -> dict[str, Any]:
    """What a submission's SHA-256 covers: the exact proposed decision of one version of one case.
    The offline verifier (archive/export/verify_export.py) rebuilds the same document."""
    return {
        "case_id": s.case_id,
        "version": s.version,
        "decision_kind": s.decision_kind,
        "amounts": dict(s.amounts),
        "legal_basis": list(s.legal_basis),
        "facts": s.facts,
        "evidence": list(s.evidence),
        "materials": {k: list(v) for k, v in s.materials.items()},
        "hearing": s.hearing,
        "marks": list(s.marks),
    }


def digest(s: LegalSubmission) -> str:
    return hashlib.sha256(canonical_json(digest_document(s))).hexdigest()


def _ref(session: Session, case: Case, ref: dict[str, Any], where: str) -> dict[str, Any]:
    """One evidence reference, checked to belong to this case."""
    keys = set(ref)
    if keys == {"record_id", "version"}:
        record_id, version = str(ref["record_id"])[:64], ref["version"]
        if not isinstance(version, int) or isinstance(version, bool):
            raise InvalidSubmission(_("{where}: record version must be a number").format(where=where))
        found = session.exec(
            select(TextRecord.id).where(
                TextRecord.record_id == record_id,
                TextRecord.version == version,
                TextRecord.case_id == case.id,
            )
        ).first()
        if found is None:
            raise InvalidSubmission(
                _("{where}: record {record} version {version} is not a record of case {number}").format(
                    where=where, record=record_id, version=version, number=case.number
                )
            )
        return {"record_id": record_id, "version": version}
    if keys == {"media_id"}:
        media_id = str(ref["media_id"])[:64]
        linked = session.exec(
            select(CaseMedia.id).where(
                CaseMedia.case_id == case.id,
                CaseMedia.media_id == media_id,
                col(CaseMedia.unlinked_at).is_(None),
            )
        ).first()
        if linked is None:
            raise InvalidSubmission(
                _("{where}: media {media} is not linked to case {number}").format(
                    where=where, media=media_id, number=case.number
                )
            )
        return {"media_id": media_id}
    raise InvalidSubmission(
        _("{where}: a reference is {{record_id, version}} or {{media_id}}").format(where=where)
    )


def _amounts(raw: dict[str, str]) -> tuple[dict[str, str], Decimal | None]:
    out: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise InvalidSubmission(_("amount names must be short words (e.g. fine)"))
        try:
            d = Decimal(str(value))
        except InvalidOperation as exc:
            raise InvalidSubmission(
                _("amount {name}: {value!r} is not a number").format(name=name, value=str(value)[:40])
            ) from exc
        if not d.is_finite() or d < 0 or d > Decimal("1e15"):
            raise InvalidSubmission(_("amount {name} must be between 0 and 10^15 yuan").format(name=name))
        out[name] = str(d)
    fine = Decimal(out["fine"]) if "fine" in out else None
    return out, fine


def latest_submission(session: Session, case_id: str) -> LegalSubmission | None:
    return session.exec(
        select(LegalSubmission)
        .where(LegalSubmission.case_id == case_id)
        .order_by(col(LegalSubmission.version).desc())
        .limit(1)
    ).first()


def submit(
    session: Session,
    user: User,
    case_id: str,
    data: ProposedDecision,
    *,
    amends: int | None = None,
    clock: Clock = utcnow,
    timezone: str = DEFAULT_TIMEZONE,
    addr: str = "",
) -> LegalSubmission:
    """Submit the case's proposed decision, or amend it (``amends`` = the current version). The
    catalogue classifies it; a submission that needs review must carry the catalogue's materials.
    Amending an approved version voids its approval, visibly (``legal.approval.void``)."""
    authorize(user, Permission.LEGAL_SUBMIT)
    case = _case(session, user, case_id)
    cases.require_writer(session, user, case)
    # One submitter at a time per case (PostgreSQL row lock; SQLite has one writer anyway).
    session.exec(select(Case.id).where(Case.id == case.id).with_for_update()).first()
    current = latest_submission(session, case.id)
    live = current if current is not None and current.state in LIVE else None
    if live is not None and amends != live.version:
        raise StaleSubmission(
            _(
                "case {number} already has proposed decision version {version}: "
                "amend it with amends={version}"
            ).format(number=case.number, version=live.version)
        )
    if live is None and amends is not None:
        raise StaleSubmission(
            _("case {number} has no current proposed decision to amend").format(number=case.number)
        )
    if not data.attest:
        raise InvalidSubmission(
            _("the submitter must attest that the materials are true and complete (attest)")
        )
    catalogue = current_catalogue(session)
    kind = catalogue.decision_kinds.get(data.decision_kind)
    if kind is None:
        raise InvalidSubmission(
            _("unknown decision kind {kind!r}; the catalogue knows: {known}").format(
                kind=data.decision_kind[:64], known=", ".join(catalogue.decision_kinds)
            )
        )
    facts_text = data.facts.strip()
    if not facts_text or len(facts_text) > MAX_TEXT:
        raise InvalidSubmission(_("facts must not be empty (at most {n} characters)").format(n=MAX_TEXT))
    basis = [b.strip() for b in data.legal_basis if b.strip()]
    if not basis or len(basis) > 100 or any(len(b) > 500 for b in basis):
        raise InvalidSubmission(_("legal_basis must name the articles the decision rests on (1-100)"))
    amounts, fine = _amounts(dict(data.amounts))
    if len(data.evidence) > MAX_REFS or sum(len(v) for v in data.materials.values()) > MAX_REFS:
        raise InvalidSubmission(_("at most {n} references").format(n=MAX_REFS))
    evidence = [_ref(session, case, r, f"evidence[{i}]") for i, r in enumerate(data.evidence)]
    known_materials = {m.key for m in catalogue.materials}
    materials: dict[str, list[dict[str, Any]]] = {}
    for key, refs in sorted(data.materials.items()):
        if key not in known_materials:
            raise InvalidSubmission(
                _("unknown material {key!r}; the catalogue names: {known}").format(
                    key=key[:64], known=", ".join(sorted(known_materials))
                )
            )
        if key == "evidence":
            raise InvalidSubmission(_("the evidence material is the evidence list; do not repeat it"))
        materials[key] = [_ref(session, case, r, f"materials.{key}[{i}]") for i, r in enumerate(refs)]
    marks = sorted({m.mark for m in case_marks(session, case.id)})
    facts = Facts(data.decision_kind, fine, data.hearing, frozenset(marks))
    verdict = classify(catalogue, facts)
    if verdict.required:
        missing = [
            m
            for m in required_materials(catalogue, facts)
            if not (evidence if m.key == "evidence" else materials.get(m.key))
        ]
        if missing:
            raise InvalidSubmission(
                _("the submission lacks required materials: {missing}").format(
                    missing=", ".join(f"{m.key} ({m.label_zh})" for m in missing)
                )
            )
    now = clock()
    due: date | None = None
    calendar_label = ""
    if verdict.required:
        cal = current_calendar(session)
        # Raises CalendarGap (422) when the calendar does not know a year the limit crosses.
        due = cal.add_working_days(local_date(now, timezone), catalogue.review_working_days)
        calendar_label = cal.label
    version = (current.version + 1) if current is not None else 1
    sub = LegalSubmission(
        case_id=case.id,
        version=version,
        decision_kind=data.decision_kind,
        amounts=amounts,
        legal_basis=basis,
        facts=facts_text,
        evidence=evidence,
        materials=materials,
        hearing=data.hearing,
        marks=marks,
        digest="",
        required=verdict.required,
        rule_id=verdict.rule.id if verdict.rule else None,
        matched_rules=verdict.matched,
        higher_authority=verdict.higher_authority,
        catalogue_version=catalogue.version,
        state=SubmissionState.PENDING if verdict.required else SubmissionState.NOT_REQUIRED,
        submitted_by=user.name,
        submitted_at=now,
        attestation=SUBMITTER_ATTESTATION,
        due=due,
        calendar=calendar_label,
        supersedes=live.version if live is not None else None,
    )
    sub.digest = digest(sub)
    if live is not None:
        _close(
            session,
            user,
            live,
            replaced_by=version,
            clock=clock,
            addr=addr,
            reason=f"amended by version {version}",
        )
    session.add(sub)
    session.flush()
    _log(
        session,
        user,
        "legal.amend" if live is not None else "legal.submit",
        case.id,
        clock,
        addr,
        submission=sub.id,
        version=version,
        digest=sub.digest,
        decision_kind=sub.decision_kind,
        required=sub.required,
        rule=sub.rule_id,
        matched=sub.matched_rules,
        higher_authority=sub.higher_authority,
        catalogue_version=sub.catalogue_version,
        due=due.isoformat() if due else None,
        calendar=calendar_label,
        materials=sorted(materials),
        evidence=len(evidence),
        attestation=SUBMITTER_ATTESTATION,
    )
    return sub


def _close(
    session: Session,
    user: User,
    sub: LegalSubmission,
    *,
    clock: Clock,
    addr: str,
    reason: str,
    replaced_by: int | None = None,
) -> None:
    """Take a live submission out of force. An approval that no longer stands is voided, visibly."""
    was_approved = sub.state is SubmissionState.APPROVED
    if was_approved:
        new_state = SubmissionState.VOIDED
    elif replaced_by is not None:
        new_state = SubmissionState.SUPERSEDED
    else:
        new_state = SubmissionState.WITHDRAWN
    _transition(session, sub, new_state, user, clock, reason)
    if was_approved:
        _log(
            session,
            user,
            "legal.approval.void",
            sub.case_id,
            clock,
            addr,
            submission=sub.id,
            version=sub.version,
            digest=sub.digest,
            reason=reason,
        )


def _transition(
    session: Session,
    sub: LegalSubmission,
    state: SubmissionState,
    user: User,
    clock: Clock,
    reason: str | None = None,
) -> None:
    """Change a submission's state only if nobody changed it since we read it (optimistic check on
    ``lock_version``, on top of the row lock): of two concurrent decisions one wins, the other 409."""
    stale = StaleSubmission(
        _("proposed decision version {version} changed while this request ran; reload it").format(
            version=sub.version
        )
    )
    try:
        result = session.execute(
            update(LegalSubmission)
            .where(col(LegalSubmission.id) == sub.id, col(LegalSubmission.lock_version) == sub.lock_version)
            .values(
                state=state,
                lock_version=sub.lock_version + 1,
                closed_at=clock() if state is not SubmissionState.APPROVED else None,
                closed_by=user.name,
                close_reason=reason,
            )
            .execution_options(synchronize_session=False)
        )
    except DBOperationalError as exc:
        # SQLite has no row locks: a writer whose snapshot another writer overtook gets "database is
        # locked" at once. That is the losing side of a race, answered like one.
        if session.get_bind().dialect.name == "sqlite":
            raise stale from exc
        raise
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise stale
    session.refresh(sub)


def get_submission(
    session: Session, user: User, submission_id: str, *, lock: bool = False
) -> LegalSubmission:
    authorize(user, Permission.LEGAL_READ)
    stmt = select(LegalSubmission).where(LegalSubmission.id == submission_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    sub = session.exec(stmt).first()
    if sub is None:
        raise SubmissionNotFound(_("no legal review submission {id}").format(id=submission_id[:64]))
    _case(session, user, sub.case_id)  # need-to-know: 404 when the case is not visible
    return sub


def withdraw(
    session: Session, user: User, submission_id: str, reason: str, *, clock: Clock = utcnow, addr: str = ""
) -> LegalSubmission:
    """Withdraw the current proposed decision (an approval it had is voided)."""
    authorize(user, Permission.LEGAL_SUBMIT)
    sub = get_submission(session, user, submission_id, lock=True)
    case = _case(session, user, sub.case_id)
    cases.require_writer(session, user, case)
    if sub.state not in LIVE:
        raise StaleSubmission(
            _("proposed decision version {version} is {state}: nothing to withdraw").format(
                version=sub.version, state=sub.state
            )
        )
    reason = reason.strip()
    if not reason:
        raise InvalidSubmission(_("a withdrawal needs a reason"))
    _close(session, user, sub, clock=clock, addr=addr, reason=reason)
    _log(
        session,
        user,
        "legal.withdraw",
        sub.case_id,
        clock,
        addr,
        submission=sub.id,
        version=sub.version,
        reason=reason,
    )
    return sub


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


# --------------------------------------------------------------------------- status


def _today(clock: Clock, timezone: str) -> date:
    return local_date(clock(), timezone)


def submission_public(s: LegalSubmission, catalogue: Catalogue | None = None) -> SubmissionPublic:
    kind = (catalogue or default_catalogue()).decision_kinds.get(s.decision_kind)
    return SubmissionPublic.model_validate(
        {**s.model_dump(), "decision_kind_zh": kind.label_zh if kind else s.decision_kind}
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
        explanation = (verdict.explain() + "; " if verdict.required else "") + _(
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
        late = current_calendar(session).working_days_between(due, _today(clock, timezone))
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
            higher_authority=s.higher_authority,
        )
        for s, number, title in rows
    ]
    return OverdueList(today=today, items=items, total=total)


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

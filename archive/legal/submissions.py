"""Proposed decisions: case marks that reclassify them, submission (and amendment as a new version),
withdrawal, attestations and their digest."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import OperationalError as DBOperationalError
from sqlmodel import Session, col, select

from archive.access import Permission, authorize
from archive.accounts.models import User
from archive.cases import services as cases
from archive.cases.models import Case, CaseMedia, TextRecord
from archive.clock import Clock, utcnow
from archive.errors import Conflict
from archive.i18n import _
from archive.legal.catalogue import (
    MARKS,
    Facts,
    classify,
    required_materials,
)
from archive.legal.catalogue_versions import current_catalogue
from archive.legal.common import (
    DEFAULT_TIMEZONE,
    LIVE,
    MAX_REFS,
    MAX_TEXT,
    _case,
    _log,
    case_marks,
)
from archive.legal.errors import (
    InvalidSubmission,
    StaleSubmission,
    SubmissionNotFound,
)
from archive.legal.models import (
    SUBMITTER_ATTESTATION,
    LegalCaseMark,
    LegalSubmission,
    SubmissionState,
)
from archive.signing import canonical_json
from archive.workdays import local_date
from archive.workdays.calendar import Deadline
from archive.workdays.services import current_calendar


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
    limit: Deadline | None = None
    calendar_label = ""
    if verdict.required:
        cal = current_calendar(session)
        # Never refused for a year the calendar does not know: then provisional and conservative
        # (archive.workdays.provisional), recomputed when the operator sets the year.
        limit = cal.deadline(local_date(now, timezone), catalogue.review_working_days)
        due = limit.due
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
        due_provisional=limit is not None and limit.provisional,
        due_missing_years=list(limit.missing_years) if limit is not None else [],
        due_weekdays=limit.weekdays_due if limit is not None else None,
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
        due_provisional=sub.due_provisional,
        due_missing_years=sub.due_missing_years,
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

"""Decisions published after the fact (事后公开): registered from a case's decision document, redacted,
approved by a publisher who names the exact redacted version's SHA-256, and taken down when revoked,
annulled or remade.

Deadlines: licensing and penalty decisions within 7 working days of the decision, the others within
20 (seed 000), counted on the archive's working-day calendar (archive.workdays, shared with legal
review). A deadline that reaches a year the calendar does not know is provisional, never refused and
never a silent guess: counted with every day of that year as a working day (so never later than the
real one), marked and shown as provisional, recomputed when the operator sets the year
(archive.workdays.provisional).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func
from sqlmodel import Session, col, select

from archive.access import Permission, authorize
from archive.accounts.models import User
from archive.cases.models import Case, DocumentKind, TextRecord
from archive.clock import Clock, utcnow
from archive.config import get_settings
from archive.context import Dispatcher
from archive.errors import Conflict, InvalidInput
from archive.i18n import _
from archive.publicity import redaction, webhooks
from archive.publicity.errors import (
    DecisionNotFound,
    DigestMismatch,
    NoDecision,
    ResidualPersonalData,
    Restricted,
    WrongState,
)
from archive.publicity.models import (
    CATEGORY_ZH,
    PUBLICATION_WORKING_DAYS,
    Decision,
    DecisionCategory,
    DecisionPublic,
    DecisionState,
    DueItem,
    DueList,
    PartyKind,
    Redaction,
    RedactionPublic,
    RosterEntry,
    Timeliness,
    WithdrawalGround,
)
from archive.publicity.services import add_version, is_restricted, log, sha256_json, today
from archive.workdays import provisional
from archive.workdays.calendar import Deadline
from archive.workdays.services import current_calendar


def deadline_for(session: Session, category: DecisionCategory, decided_on: date) -> Deadline:
    return current_calendar(session).deadline(decided_on, PUBLICATION_WORKING_DAYS[category])


def timeliness(d: Decision, on: date) -> Timeliness:
    if d.published_on is not None:
        return Timeliness.ON_TIME if d.published_on <= d.deadline else Timeliness.LATE
    if d.withdrawn_on is not None:  # taken back before it was ever published: judged on that day
        on = d.withdrawn_on
    return Timeliness.OVERDUE if on > d.deadline else Timeliness.PENDING


@dataclass(frozen=True)
class DecisionInput:
    case_id: str
    category: DecisionCategory
    decided_on: date
    party_kind: PartyKind
    party_name: str
    conclusion: str
    document_no: str = ""
    record_id: str | None = None
    persons: Sequence[str] = field(default_factory=tuple)


def _decision_record(session: Session, case: Case, record_id: str | None) -> TextRecord:
    stmt = select(TextRecord).where(TextRecord.case_id == case.id)
    if record_id is not None:
        stmt = stmt.where(TextRecord.record_id == record_id)
    else:
        stmt = stmt.where(TextRecord.doc_kind == DocumentKind.DECISION)
    rec = session.exec(
        stmt.order_by(col(TextRecord.created_at).desc(), col(TextRecord.version).desc())
    ).first()
    if rec is None or rec.doc_kind is not DocumentKind.DECISION:
        raise NoDecision(
            _("case {number} has no decision document to publish (a text record of kind decision)").format(
                number=case.number
            )
        )
    return rec


def latest_record(session: Session, decision: Decision) -> TextRecord:
    rec = session.exec(
        select(TextRecord)
        .where(TextRecord.record_id == decision.record_id, TextRecord.case_id == decision.case_id)
        .order_by(col(TextRecord.version).desc())
    ).first()
    if rec is None:  # records are append-only: this cannot happen unless the database was edited
        raise NoDecision(_("the decision document of {ref} is missing").format(ref=decision.ref))
    return rec


def register(
    session: Session, user: User, data: DecisionInput, *, addr: str = "", clock: Clock = utcnow
) -> Decision:
    """Give a case's decision its category, date, party and conclusion, and with them its deadline."""
    authorize(user, Permission.PUBLICITY_REGISTER)
    case = session.get(Case, data.case_id)
    if case is None:
        raise NoDecision(_("no case {id}").format(id=data.case_id[:40]))
    rec = _decision_record(session, case, data.record_id)
    party, conclusion = data.party_name.strip(), data.conclusion.strip()
    if not party or not conclusion:
        raise InvalidInput(_("a decision needs its party and its conclusion"))
    if data.decided_on > today(clock):
        raise InvalidInput(_("the decision date {day} is in the future").format(day=data.decided_on))
    taken = session.exec(
        select(Decision.ref).where(Decision.case_id == case.id, Decision.record_id == rec.record_id)
    ).first()
    if taken:
        raise Conflict(_("this decision document is already registered as {ref}").format(ref=taken))
    persons = sorted({p.strip() for p in data.persons if p.strip()})
    limit = deadline_for(session, data.category, data.decided_on)
    now = clock()
    decision = Decision(
        ref=f"D{data.decided_on.year}-{secrets.token_hex(4)}",
        case_id=case.id,
        record_id=rec.record_id,
        category=data.category,
        decided_on=data.decided_on,
        deadline=limit.due,
        deadline_provisional=limit.provisional,
        deadline_missing_years=list(limit.missing_years),
        deadline_weekdays=limit.weekdays_due,
        party_kind=data.party_kind,
        party_name=party,
        conclusion=conclusion,
        document_no=data.document_no.strip(),
        persons=persons,
        created_by=user.name,
        created_at=now,
        updated_at=now,
    )
    session.add(decision)
    session.flush()
    log(
        session,
        user,
        "publicity.decision.register",
        "decision",
        decision.id,
        addr=addr,
        clock=clock,
        case=case.number,
        ref=decision.ref,
        category=data.category,
        decided_on=str(data.decided_on),
        deadline=str(decision.deadline),
        deadline_provisional=limit.provisional,
        deadline_missing_years=list(limit.missing_years),
    )
    return decision


def get(session: Session, user: User, decision_id: str) -> Decision:
    authorize(user, Permission.PUBLICITY_READ)
    d = session.get(Decision, decision_id)
    if d is None:
        raise DecisionNotFound(_("no decision {id}").format(id=decision_id[:40]))
    return d


def listing(
    session: Session, user: User, *, state: DecisionState | None = None, limit: int = 100, offset: int = 0
) -> list[Decision]:
    authorize(user, Permission.PUBLICITY_READ)
    stmt = select(Decision)
    if state is not None:
        stmt = stmt.where(Decision.state == state)
    stmt = stmt.order_by(col(Decision.decided_on).desc(), col(Decision.id)).offset(offset).limit(limit)
    return list(session.exec(stmt))


def to_public(session: Session, d: Decision, on: date | None = None) -> DecisionPublic:
    case = session.get(Case, d.case_id)
    return DecisionPublic.model_validate(
        {
            **d.model_dump(),
            "case_number": case.number if case else "",
            "category_label": CATEGORY_ZH[d.category],
            "timeliness": timeliness(d, on or today()),
            "deadline_note": provisional.note(d.deadline_missing_years) if d.deadline_provisional else "",
        }
    )


def due(session: Session, user: User, *, on: date | None = None, soon_days: int | None = None) -> DueList:
    """Unpublished decisions past their deadline, and those due within ``soon_days`` working days."""
    authorize(user, Permission.PUBLICITY_READ)
    return due_list(session, on=on, soon_days=soon_days)


def due_list(session: Session, *, on: date | None = None, soon_days: int | None = None) -> DueList:
    """:func:`due` without the caller's check, for the system's own readers (the CLI run by the
    operator on the server, the daily beat warning)."""
    on = on or today()
    soon = get_settings().publicity_due_soon_days if soon_days is None else soon_days
    cal = current_calendar(session)
    # Never refused for a year the calendar does not know: counted as provisional deadlines are (every
    # day working), so a provisional deadline is "due soon" no later than it would be on the real one.
    horizon = cal.add_working_days(on, soon, provisional=True)
    rows = session.exec(
        select(Decision, Case.number)
        .join(Case, col(Case.id) == col(Decision.case_id))
        .where(Decision.state == DecisionState.PENDING, col(Decision.deadline) <= horizon)
        .order_by(col(Decision.deadline), col(Decision.decided_on))
    ).all()
    overdue: list[DueItem] = []
    due_soon: list[DueItem] = []
    for d, number in rows:
        item = DueItem(
            id=d.id,
            ref=d.ref,
            case_number=number,
            category=d.category,
            category_label=CATEGORY_ZH[d.category],
            decided_on=d.decided_on,
            deadline=d.deadline,
            deadline_provisional=d.deadline_provisional,
            deadline_missing_years=list(d.deadline_missing_years),
            deadline_weekdays=d.deadline_weekdays,
            deadline_note=provisional.note(d.deadline_missing_years) if d.deadline_provisional else "",
            working_days_left=cal.working_days_between(on, d.deadline, provisional=True),
        )
        (overdue if d.deadline < on else due_soon).append(item)
    return DueList(today=on, overdue=overdue, due_soon=due_soon)


# --------------------------------------------------------------------------- redaction


def _known(session: Session, d: Decision, rec: TextRecord) -> dict[str, list[str]]:
    """Names the engine masks (natural persons of the case: the party, the persons given at
    registration, and the persons its other records name, such as the person questioned in an inquiry
    transcript), and names that stay: organisations, the authority, and the enforcing officers, whose
    names the public roster shows anyway."""
    names = list(d.persons)
    for body in session.exec(select(TextRecord.body).where(TextRecord.case_id == d.case_id)):
        names.extend(redaction.person_names(body))
    orgs = [get_settings().publicity_authority] if get_settings().publicity_authority else []
    if d.party_kind is PartyKind.NATURAL_PERSON:
        names.append(d.party_name)
    else:
        orgs.append(d.party_name)
    officers = set(session.exec(select(RosterEntry.name).where(col(RosterEntry.officer).in_(rec.officers))))
    names = sorted(set(names) - officers - set(orgs))
    return {"names": names, "organisations": orgs, "keep": sorted(officers)}


def _find(text: str, known: dict[str, list[str]], field: str = "text") -> list[redaction.Finding]:
    return redaction.find(
        text, names=known["names"], organisations=known["organisations"], keep=known["keep"], field=field
    )


def _content(r: Redaction) -> dict[str, str]:
    return {"text": r.text, "party": r.party, "conclusion": r.conclusion}


def redaction_digest(text: str, party: str, conclusion: str) -> str:
    """What a publisher approves: SHA-256 of the RFC 8785 JSON of the three public texts."""
    return sha256_json({"text": text, "party": party, "conclusion": conclusion})


def draft_redaction(
    session: Session,
    user: User,
    decision_id: str,
    *,
    text: str | None = None,
    addr: str = "",
    clock: Clock = utcnow,
) -> Redaction:
    """A new redacted version: produced by the engine from the latest decision document, or, with
    ``text``, the publisher's own edit of it (checked by the engine again: what it still finds is
    listed as ``residual``)."""
    authorize(user, Permission.PUBLISH)
    d = get(session, user, decision_id)
    if d.state is DecisionState.WITHDRAWN:
        raise WrongState(_("decision {ref} was withdrawn").format(ref=d.ref))
    rec = latest_record(session, d)
    known = _known(session, d, rec)
    findings = _find(rec.body, known)
    if text is None:
        published = redaction.apply(rec.body, findings)
    else:
        published = text.strip()
        if not published:
            raise InvalidInput(_("the redacted text must not be empty"))
    party_findings = _find(d.party_name, known, "party")
    party = (
        redaction.mask_name(d.party_name)
        if d.party_kind is PartyKind.NATURAL_PERSON
        else redaction.apply(d.party_name, party_findings)
    )
    concl_findings = _find(d.conclusion, known, "conclusion")
    conclusion = redaction.apply(d.conclusion, concl_findings)
    residual = [
        *_find(published, known),
        *_find(conclusion, known, "conclusion"),
    ]
    latest = session.exec(select(func.max(Redaction.version)).where(Redaction.decision_id == d.id)).one()
    r = Redaction(
        decision_id=d.id,
        version=int(latest or 0) + 1,
        record_version=rec.version,
        text=published,
        party=party,
        conclusion=conclusion,
        sha256=redaction_digest(published, party, conclusion),
        edited=text is not None,
        findings=[f.to_json() for f in (*findings, *concl_findings)],
        residual=[{**f.to_json(), "value_masked": f.replacement} for f in residual],
        created_by=user.name,
        created_at=clock(),
    )
    add_version(session, r, _("the redaction of decision {ref}").format(ref=d.ref))
    log(
        session,
        user,
        "publicity.redaction.draft",
        "decision",
        d.id,
        addr=addr,
        clock=clock,
        version=r.version,
        sha256=r.sha256,
        edited=r.edited,
        findings=len(r.findings),
        residual=len(r.residual),
    )
    return r


def get_redaction(session: Session, user: User, decision_id: str, version: int) -> Redaction:
    d = get(session, user, decision_id)
    r = session.exec(
        select(Redaction).where(Redaction.decision_id == d.id, Redaction.version == version)
    ).first()
    if r is None:
        raise DecisionNotFound(_("decision {ref} has no redaction version {v}").format(ref=d.ref, v=version))
    return r


def redactions(
    session: Session, user: User, decision_id: str, *, addr: str = "", clock: Clock = utcnow
) -> list[Redaction]:
    """Every redacted version with its diff: the diff shows the unredacted decision, so reading it is
    logged like reading a case."""
    d = get(session, user, decision_id)
    rows = list(
        session.exec(select(Redaction).where(Redaction.decision_id == d.id).order_by(col(Redaction.version)))
    )
    log(session, user, "publicity.redaction.view", "decision", d.id, addr=addr, clock=clock, ref=d.ref)
    return rows


def redaction_public(session: Session, d: Decision, r: Redaction) -> RedactionPublic:
    rec = session.exec(
        select(TextRecord).where(TextRecord.record_id == d.record_id, TextRecord.version == r.record_version)
    ).one()
    return RedactionPublic.model_validate(
        {**r.model_dump(), "decision_ref": d.ref, "diff": redaction.diff(rec.body, r.text)}
    )


@dataclass(frozen=True)
class Override:
    value: str
    reason: str


@dataclass(frozen=True)
class Published:
    decision: Decision
    correction: bool
    deliveries: list[str]


def _check_id_numbers(r: Redaction, overrides: Sequence[Override]) -> list[dict[str, str]]:
    hits = [v for part in _content(r).values() for v in redaction.id_numbers(part)]
    given = {o.value.strip(): o.reason.strip() for o in overrides}
    for value, reason in given.items():
        if value not in hits:
            raise InvalidInput(
                _("an override names {value!r}, which is not an ID number in the text").format(
                    value=value[:40]
                )
            )
        if not reason:
            raise InvalidInput(_("each override needs a reason"))
    missing = [h for h in hits if h not in given]
    if missing:
        masked = ", ".join(h[:4] + "*" * 10 + h[-4:] for h in missing)
        raise ResidualPersonalData(
            _(
                "the text still contains {n} resident ID number(s) ({masked}); mask them, or override "
                "each with a reason"
            ).format(n=len(missing), masked=masked)
        )
    return [{"value_sha256": sha256_json(v), "reason": given[v]} for v in dict.fromkeys(hits)]


def approve(
    session: Session,
    user: User,
    decision_id: str,
    version: int,
    sha256: str,
    *,
    overrides: Sequence[Override] = (),
    dispatcher: Dispatcher | None = None,
    addr: str = "",
    clock: Clock = utcnow,
) -> Published:
    """Publish redaction ``version`` of the decision; ``sha256`` must be that version's digest, so
    what the publisher reviewed is exactly what becomes public. Approving a later version of a
    published decision corrects it (纠错)."""
    authorize(user, Permission.PUBLISH)
    d = get(session, user, decision_id)
    if d.state is DecisionState.WITHDRAWN:
        raise WrongState(_("decision {ref} was withdrawn; it cannot be published again").format(ref=d.ref))
    r = get_redaction(session, user, decision_id, version)
    if sha256.strip().lower() != r.sha256:
        raise DigestMismatch(
            _("the approval names SHA-256 {given}, but redaction version {v} has {stored}").format(
                given=sha256[:64], v=version, stored=r.sha256
            )
        )
    if d.published_version == version:
        raise WrongState(_("version {v} of {ref} is already published").format(v=version, ref=d.ref))
    if is_restricted(session, case_id=d.case_id, record_id=d.record_id):
        raise Restricted(
            _("decision {ref} is marked secret or private and is never published").format(ref=d.ref)
        )
    bound = _check_id_numbers(r, overrides)
    now, on = clock(), today(clock)
    correction = d.state is DecisionState.PUBLISHED
    r.approved_by, r.approved_at, r.overrides = user.name, now, bound
    session.add(r)
    d.state = DecisionState.PUBLISHED
    d.published_version = version
    d.published_by = user.name
    if correction:
        d.corrected_on = on
    else:
        d.published_at, d.published_on = now, on
    d.updated_at = now
    session.add(d)
    session.flush()
    log(
        session,
        user,
        "publicity.decision.correct" if correction else "publicity.decision.publish",
        "decision",
        d.id,
        addr=addr,
        clock=clock,
        ref=d.ref,
        version=version,
        sha256=r.sha256,
        overrides=bound,
        timeliness=timeliness(d, on),
    )
    from archive.publicity.performance import current
    from archive.publicity.public import decision_entry

    event = "decision.updated" if correction else "decision.published"
    entry = decision_entry(d, r, current(session, d.id))
    sent = webhooks.enqueue(session, event, d.ref, entry, dispatcher=dispatcher, clock=clock)
    return Published(d, correction, [sent.id] if sent else [])


def withdraw(
    session: Session,
    user: User,
    decision_id: str,
    ground: WithdrawalGround,
    reason: str,
    *,
    withdrawn_on: date | None = None,
    dispatcher: Dispatcher | None = None,
    addr: str = "",
    clock: Clock = utcnow,
) -> Published:
    """Take a decision down at once ("及时从信息公示平台撤下"); the notice (date, ground, reason) stays.
    The reason is redacted by the same engine: it goes on the public face."""
    authorize(user, Permission.PUBLISH)
    d = get(session, user, decision_id)
    if d.state is DecisionState.WITHDRAWN:
        raise WrongState(_("decision {ref} is already withdrawn").format(ref=d.ref))
    if not reason.strip():
        raise InvalidInput(_("a withdrawal needs a reason"))
    on = withdrawn_on or today(clock)
    if on > today(clock) or on < d.decided_on:
        raise InvalidInput(
            _("the withdrawal date {day} must lie between the decision and today").format(day=on)
        )
    rec = latest_record(session, d)
    known = _known(session, d, rec)
    masked_reason = redaction.apply(reason.strip(), _find(reason.strip(), known))
    was_public = d.state is DecisionState.PUBLISHED
    now = clock()
    d.state = DecisionState.WITHDRAWN
    d.withdrawn_at, d.withdrawn_on, d.withdrawn_by = now, on, user.name
    d.withdrawal_ground, d.withdrawal_reason = ground, masked_reason[:2000]
    d.updated_at = now
    session.add(d)
    session.flush()
    log(
        session,
        user,
        "publicity.decision.withdraw",
        "decision",
        d.id,
        addr=addr,
        clock=clock,
        ref=d.ref,
        ground=ground,
        reason=reason.strip()[:2000],
        withdrawn_on=str(on),
        was_public=was_public,
    )
    sent = None
    if was_public:
        from archive.publicity.public import decision_entry

        sent = webhooks.enqueue(
            session, "decision.withdrawn", d.ref, decision_entry(d, None), dispatcher=dispatcher, clock=clock
        )
    return Published(d, False, [sent.id] if sent else [])

"""Random-inspection results (双随机抽查结果, seed 003, A10).

A publisher registers a result: the inspection item (the entry of the published random-inspection
list it was drawn from), the inspected party, the date, the result and a summary. What the public will
see is fixed at registration: a natural person's name masked exactly as decisions mask their party
(张某某; an organisation's name stays), the summary passed through the same redaction engine. The
result is a draft until a publisher approves it by naming the SHA-256 of exactly that public content
(as advance documents are approved), so what was reviewed is what is published. A published result
may be withdrawn: it leaves the public face at once and stays here, with who, when and why.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from archive.access import Permission, authorize
from archive.accounts.models import User
from archive.clock import Clock, utcnow
from archive.config import get_settings
from archive.context import Dispatcher
from archive.i18n import _
from archive.publicity import redaction, webhooks
from archive.publicity.errors import DigestMismatch, InspectionNotFound, InvalidField, WrongState
from archive.publicity.models import (
    INSPECTION_ZH,
    PARTY_ZH,
    InspectionOutcome,
    InspectionPublic,
    InspectionState,
    PartyKind,
    RandomInspection,
)
from archive.publicity.services import log, sha256_json, today

MAX_SUMMARY = 20_000


@dataclass(frozen=True)
class InspectionInput:
    item: str
    party_kind: PartyKind
    party_name: str
    inspected_on: date
    result: InspectionOutcome
    summary: str


def public_content(row: RandomInspection) -> dict[str, str]:
    """Exactly what the public sees of a result (and what its SHA-256 covers)."""
    return {
        "item": row.item,
        "party_kind": str(row.party_kind),
        "party": row.public_party,
        "inspected_on": row.inspected_on.isoformat(),
        "result": str(row.result),
        "summary": row.public_summary,
    }


def _redact(kind: PartyKind, party: str, item: str, summary: str) -> tuple[str, str]:
    """The public party and summary, through the redaction engine as decisions are (a natural person's
    name masked; an organisation's name kept, anything personal inside it masked). The item is
    published as written, so personal data in it is refused, not masked."""
    authority = get_settings().publicity_authority
    orgs = [authority] if authority else []
    names: list[str] = []
    if kind is PartyKind.NATURAL_PERSON:
        names.append(party)
        public_party = redaction.mask_name(party)
    else:
        orgs.append(party)
        public_party = redaction.apply(party, redaction.find(party, organisations=orgs, field="party"))
    found = redaction.find(item, names=names, organisations=orgs, field="item")
    if found:
        kinds = ", ".join(sorted({f.kind for f in found}))
        raise InvalidField(
            _("item: contains personal data ({kinds}); an inspection item is published as written").format(
                kinds=kinds
            )
        )
    findings = redaction.find(summary, names=names, organisations=orgs, field="summary")
    return public_party, redaction.apply(summary, findings)


def register(
    session: Session, user: User, data: InspectionInput, *, addr: str = "", clock: Clock = utcnow
) -> RandomInspection:
    authorize(user, Permission.PUBLISH)
    item, party, summary = data.item.strip(), data.party_name.strip(), data.summary.strip()
    for name, value in (("item", item), ("party_name", party), ("summary", summary)):
        if not value:
            raise InvalidField(_("{field}: must not be empty").format(field=name))
    if len(summary) > MAX_SUMMARY:
        raise InvalidField(_("summary: longer than {n} characters").format(n=MAX_SUMMARY))
    on = today(clock)
    if data.inspected_on > on:
        raise InvalidField(
            _("inspected_on: {day} is in the future (today is {today} in the agency's time zone)").format(
                day=data.inspected_on, today=on
            )
        )
    public_party, public_summary = _redact(data.party_kind, party, item, summary)
    now = clock()
    row = RandomInspection(
        ref=f"I{data.inspected_on.year}-{secrets.token_hex(4)}",
        item=item[:500],
        party_kind=data.party_kind,
        party_name=party[:200],
        inspected_on=data.inspected_on,
        result=data.result,
        summary=summary,
        public_party=public_party[:200],
        public_summary=public_summary,
        sha256="",
        created_by=user.name,
        created_at=now,
        updated_at=now,
    )
    row.sha256 = sha256_json(public_content(row))
    session.add(row)
    session.flush()
    log(
        session,
        user,
        "publicity.inspection.register",
        "inspection",
        row.id,
        addr=addr,
        clock=clock,
        ref=row.ref,
        result=str(row.result),
        inspected_on=str(row.inspected_on),
        sha256=row.sha256,
    )
    return row


def get(session: Session, user: User, inspection_id: str) -> RandomInspection:
    authorize(user, Permission.PUBLICITY_READ)
    row = session.get(RandomInspection, inspection_id)
    if row is None:
        raise InspectionNotFound(_("no inspection result {id}").format(id=inspection_id[:40]))
    return row


def listing(
    session: Session,
    user: User,
    *,
    state: InspectionState | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[RandomInspection]:
    authorize(user, Permission.PUBLICITY_READ)
    stmt = select(RandomInspection)
    if state is not None:
        stmt = stmt.where(RandomInspection.state == state)
    stmt = stmt.order_by(col(RandomInspection.inspected_on).desc(), col(RandomInspection.id))
    return list(session.exec(stmt.offset(offset).limit(limit)))


def approve(
    session: Session,
    user: User,
    inspection_id: str,
    sha256: str,
    *,
    dispatcher: Dispatcher | None = None,
    addr: str = "",
    clock: Clock = utcnow,
) -> RandomInspection:
    """Publish a draft; ``sha256`` must be the digest of its public content."""
    authorize(user, Permission.PUBLISH)
    row = get(session, user, inspection_id)
    if row.state is not InspectionState.DRAFT:
        raise WrongState(
            _("inspection result {ref} is {state}, not a draft").format(ref=row.ref, state=row.state)
        )
    if sha256.strip().lower() != row.sha256:
        raise DigestMismatch(
            _("the approval names SHA-256 {given}, but inspection result {ref} has {stored}").format(
                given=sha256[:64], ref=row.ref, stored=row.sha256
            )
        )
    now = clock()
    row.state = InspectionState.PUBLISHED
    row.published_by, row.published_at, row.published_on = user.name, now, today(clock)
    row.updated_at = now
    session.add(row)
    session.flush()
    log(
        session,
        user,
        "publicity.inspection.publish",
        "inspection",
        row.id,
        addr=addr,
        clock=clock,
        ref=row.ref,
        sha256=row.sha256,
    )
    webhooks.enqueue(session, "inspection.published", row.ref, entry(row), dispatcher=dispatcher, clock=clock)
    return row


def withdraw(
    session: Session,
    user: User,
    inspection_id: str,
    reason: str,
    *,
    dispatcher: Dispatcher | None = None,
    addr: str = "",
    clock: Clock = utcnow,
) -> RandomInspection:
    """Take a published result down at once; it stays in the database with who, when and why."""
    authorize(user, Permission.PUBLISH)
    row = get(session, user, inspection_id)
    if row.state is not InspectionState.PUBLISHED:
        raise WrongState(
            _("inspection result {ref} is {state}; only a published one can be withdrawn").format(
                ref=row.ref, state=row.state
            )
        )
    reason = reason.strip()
    if not reason:
        raise InvalidField(_("reason: a withdrawal needs a reason"))
    now = clock()
    row.state = InspectionState.WITHDRAWN
    row.withdrawn_by, row.withdrawn_at, row.withdrawn_on = user.name, now, today(clock)
    row.withdrawal_reason = reason[:2000]
    row.updated_at = now
    session.add(row)
    session.flush()
    log(
        session,
        user,
        "publicity.inspection.withdraw",
        "inspection",
        row.id,
        addr=addr,
        clock=clock,
        ref=row.ref,
        reason=row.withdrawal_reason,
    )
    webhooks.enqueue(
        session,
        "inspection.withdrawn",
        row.ref,
        {"ref": row.ref, "withdrawn_on": row.withdrawn_on.isoformat() if row.withdrawn_on else None},
        dispatcher=dispatcher,
        clock=clock,
    )
    return row


def published(session: Session, *, limit: int = 50, offset: int = 0) -> tuple[list[RandomInspection], int]:
    """What the public face lists: published results, newest publication first."""
    where = RandomInspection.state == InspectionState.PUBLISHED
    total = session.exec(select(func.count()).select_from(RandomInspection).where(where)).one()
    rows = session.exec(
        select(RandomInspection)
        .where(where)
        .order_by(
            col(RandomInspection.published_at).desc(),
            col(RandomInspection.inspected_on).desc(),
            col(RandomInspection.ref),
        )
        .offset(max(offset, 0))
        .limit(max(limit, 1))
    ).all()
    return list(rows), int(total)


def entry(row: RandomInspection) -> dict[str, Any]:
    """One published result as the public and the external platform see it (allow-listed fields)."""
    return {
        "ref": row.ref,
        "authority": get_settings().publicity_authority,
        **public_content(row),
        "party_kind_label": PARTY_ZH[row.party_kind],
        "result_label": INSPECTION_ZH[row.result],
        "published_on": row.published_on.isoformat() if row.published_on else None,
        "sha256": row.sha256,
    }


def to_public(row: RandomInspection) -> InspectionPublic:
    return InspectionPublic.model_validate({**row.model_dump(), "result_label": INSPECTION_ZH[row.result]})

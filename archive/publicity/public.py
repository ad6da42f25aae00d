"""What the unauthenticated public face reads, and nothing more.

Every function here builds its output from an allow-list of fields: published decisions by their
random ``ref`` (never a case id, record id or account name), the approved redacted text only, and for
a withdrawn decision only the notice (dates, ground, reason). Anything :func:`is_restricted` marks is
left out even if it was published before the mark was set.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive.config import get_settings
from archive.publicity import documents, inspections, performance, roster
from archive.publicity.models import (
    CATEGORY_ZH,
    PARTY_ZH,
    PERFORMANCE_ZH,
    WITHDRAWAL_ZH,
    AnnualReport,
    Decision,
    DecisionCategory,
    DecisionPerformance,
    DecisionState,
    PublicDocument,
    Redaction,
    ReportState,
    WithdrawalGround,
)
from archive.publicity.services import is_restricted, local_date
from archive.restricted.models import Mark

MAX_PAGE = 100
Reader = Session  # what the public face reads through (routers name it without importing sqlmodel)


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A read-only session: the public face never writes (nothing is committed)."""
    with Session(engine) as session:
        yield session


def generation(session: Session) -> tuple[int, str, int, str, str, int]:
    """Changes whenever any decision is registered, published, corrected or withdrawn, whenever a
    restriction mark is placed or lifted (issue 13: a mark hides a published decision without
    changing its row), and whenever a decision's performance is recorded (append-only versions: their
    count): what a cache of rendered public answers is keyed by."""
    count, newest = session.exec(select(func.count(), func.max(Decision.updated_at))).one()
    marks, marked, lifted = session.exec(
        select(func.count(), func.max(Mark.marked_at), func.max(Mark.lifted_at))
    ).one()
    performed = session.exec(select(func.count()).select_from(DecisionPerformance)).one()
    return int(count), str(newest), int(marks), str(marked), str(lifted), int(performed)


def performance_entry(p: DecisionPerformance | None) -> dict[str, Any] | None:
    """A decision's current performance as the public sees it: status and date, never the note."""
    if p is None:
        return None
    return {"status": str(p.status), "status_label": PERFORMANCE_ZH[p.status], "as_of": p.as_of.isoformat()}


def decision_entry(
    d: Decision, r: Redaction | None, performance: DecisionPerformance | None = None
) -> dict[str, Any]:
    """One decision as the public and the external platform see it (``performance``: its current
    performance, shown while it is published; a withdrawn decision shows none)."""
    entry: dict[str, Any] = {
        "ref": d.ref,
        "authority": get_settings().publicity_authority,
        "category": str(d.category),
        "category_label": CATEGORY_ZH[d.category],
        "document_no": d.document_no,
        "decided_on": d.decided_on.isoformat(),
        "published_on": d.published_on.isoformat() if d.published_on else None,
        "corrected_on": d.corrected_on.isoformat() if d.corrected_on else None,
        "party_kind": str(d.party_kind),
        "party_kind_label": PARTY_ZH[d.party_kind],
        "party": None,
        "conclusion": None,
        "text": None,
        "sha256": None,
        "withdrawn": None,
        "performance": None,
    }
    if d.state is DecisionState.WITHDRAWN:
        ground = d.withdrawal_ground or WithdrawalGround.REVOKED  # always set together with the state
        entry["withdrawn"] = {
            "date": d.withdrawn_on.isoformat() if d.withdrawn_on else None,
            "ground": str(ground),
            "ground_label": WITHDRAWAL_ZH[ground],
            "reason": d.withdrawal_reason or "",
        }
    elif r is not None:
        entry.update(party=r.party, conclusion=r.conclusion, text=r.text, sha256=r.sha256)
        entry["performance"] = performance_entry(performance)
    return entry


def _visible() -> Any:
    # Withdrawn decisions stay listed (as a notice) only if they had been published.
    return or_(
        col(Decision.state) == DecisionState.PUBLISHED,
        (col(Decision.state) == DecisionState.WITHDRAWN) & col(Decision.published_on).is_not(None),
    )


def decisions(
    session: Session,
    *,
    category: DecisionCategory | None = None,
    year: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    stmt = select(Decision, Redaction).outerjoin(
        Redaction,
        (col(Redaction.decision_id) == col(Decision.id))
        & (col(Redaction.version) == col(Decision.published_version)),
    )
    where = [_visible()]
    if category is not None:
        where.append(col(Decision.category) == category)
    if year is not None:
        where.append(col(Decision.decided_on) >= date(year, 1, 1))
        where.append(col(Decision.decided_on) <= date(year, 12, 31))
    total = session.exec(select(func.count()).select_from(Decision).where(*where)).one()
    rows = session.exec(
        stmt.where(*where)
        .order_by(col(Decision.published_on).desc(), col(Decision.ref))
        .offset(max(offset, 0))
        .limit(min(max(limit, 1), MAX_PAGE))
    ).all()
    out = []
    performed = performance.current_of(
        session, [d.id for d, _r in rows if d.state is DecisionState.PUBLISHED]
    )
    for d, r in rows:
        if d.state is DecisionState.PUBLISHED and (
            r is None or is_restricted(session, case_id=d.case_id, record_id=d.record_id)
        ):
            continue
        out.append(decision_entry(d, r, performed.get(d.id)))
    return out, int(total)


def decision(session: Session, ref: str) -> dict[str, Any] | None:
    d = session.exec(select(Decision).where(Decision.ref == ref, _visible())).first()
    if d is None:
        return None
    r = None
    if d.state is DecisionState.PUBLISHED:
        if is_restricted(session, case_id=d.case_id, record_id=d.record_id):
            return None
        r = session.exec(
            select(Redaction).where(Redaction.decision_id == d.id, Redaction.version == d.published_version)
        ).first()
        if r is None:
            return None
        return decision_entry(d, r, performance.current(session, d.id))
    return decision_entry(d, r)


def roster_entries(session: Session, on: date) -> list[dict[str, Any]]:
    fields = ("name", "unit", "post", "badge_no", "certificate_no", "category", "area")
    return [
        {
            **{f: getattr(e, f) for f in fields},
            "valid_from": e.valid_from.isoformat(),
            "valid_to": e.valid_to.isoformat(),
        }
        for e in roster.public_roster(session, on)
    ]


def document_entry(doc: PublicDocument) -> dict[str, Any]:
    p = documents.to_public(doc)
    return {
        "key": p.key,
        "version": p.version,
        "kind": str(p.kind),
        "kind_label": p.kind_label,
        "title": p.title,
        "body": p.body,
        "published_on": local_date(p.approved_at).isoformat() if p.approved_at else None,
        "sha256": p.sha256,
    }


def document_list(session: Session, key: str | None = None) -> list[dict[str, Any]]:
    return [document_entry(d) for d in documents.published(session, key)]


def reports(session: Session) -> list[AnnualReport]:
    """The published yearly reports, newest year first (the newest published version of each)."""
    rows = session.exec(
        select(AnnualReport)
        .where(AnnualReport.state == ReportState.PUBLISHED)
        .order_by(col(AnnualReport.year).desc(), col(AnnualReport.version).desc())
    ).all()
    seen: set[int] = set()
    out = []
    for r in rows:
        if r.year not in seen:
            seen.add(r.year)
            out.append(r)
    return out


def report(session: Session, year: int) -> AnnualReport | None:
    return next((r for r in reports(session) if r.year == year), None)


def inspection_list(
    session: Session, *, limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Published random-inspection results, newest publication first (a natural person's name masked;
    nothing of a draft or a withdrawn result)."""
    rows, total = inspections.published(session, limit=min(max(limit, 1), MAX_PAGE), offset=offset)
    return [inspections.entry(r) for r in rows], total

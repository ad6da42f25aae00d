"""Text records: versioned, with their officers and attachments; listed, and searched (PostgreSQL
full text, or SQLite FTS5 on the embedded default)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy import text as sql_text
from sqlmodel import Session, col, select

from archive.access import Permission, actor, can
from archive.accounts.models import User
from archive.cases.access import (
    UNLINKABLE,
    get_case,
    log_change,
    media_visible,
    require_writer,
    visible_cases_clause,
)
from archive.cases.cases import put_officer_on_case
from archive.cases.errors import InvalidRecord, RecordOutOfBounds
from archive.cases.linking import autolink, find_open_link, make_link, on_case
from archive.cases.models import (
    Case,
    DocumentKind,
    LinkSource,
    RecordOfficer,
    RecordPublic,
    Stage,
    TextRecord,
)
from archive.clock import Clock, checked_utc, utcnow
from archive.errors import InvalidInput, NotFound
from archive.i18n import _
from archive.media.models import Media
from archive.publicity import roster as publicity_roster
from archive.publicity.services import local_date
from archive.restricted import services as restricted
from archive.restricted.models import SubjectKind

_BADGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MAX_OFFICERS = 50
MAX_ATTACHMENTS = 100

# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class RecordInput:
    stage: Stage
    doc_kind: DocumentKind
    author: str
    occurred_from: datetime
    occurred_to: datetime
    body: str
    title: str = ""
    officers: Sequence[str] = ()
    attachments: Sequence[str] = ()


def _check_record(data: RecordInput, max_body: int) -> tuple[datetime, datetime, list[str]]:
    if data.occurred_from.tzinfo is None or data.occurred_to.tzinfo is None:
        raise InvalidRecord(_("occurred_from and occurred_to must carry a UTC offset"))
    start = checked_utc(data.occurred_from, "occurred_from")
    end = checked_utc(data.occurred_to, "occurred_to")
    if end < start:
        raise InvalidRecord(
            _("occurred_to ({end}) is before occurred_from ({start})").format(
                end=end.isoformat(), start=start.isoformat()
            )
        )
    if len(data.body) > max_body:
        raise InvalidRecord(
            _("body is {count} characters; the limit is {max_body}").format(
                count=len(data.body), max_body=max_body
            )
        )
    if not data.author.strip():
        raise InvalidRecord(_("author must not be empty"))
    officers = sorted(set(data.officers))
    if len(officers) > MAX_OFFICERS:
        raise InvalidRecord(_("at most {max_officers} officers per record").format(max_officers=MAX_OFFICERS))
    for badge in officers:
        if not _BADGE.match(badge):
            raise InvalidRecord(_("officer {badge!r} is not a badge number").format(badge=badge[:70]))
    if len(data.attachments) > MAX_ATTACHMENTS:
        raise InvalidRecord(
            _("at most {max_attachments} attachments per record").format(max_attachments=MAX_ATTACHMENTS)
        )
    return start, end, officers


def _attachments(session: Session, user: User, ids: Sequence[str]) -> list[str]:
    out: list[str] = []
    for media_id in dict.fromkeys(ids):
        item = session.get(Media, media_id)
        if item is None or not media_visible(session, user, item):
            raise InvalidRecord(
                _("attachment {media_id!r}: no such media item").format(media_id=media_id[:40])
            )
        if item.state in UNLINKABLE:
            raise InvalidRecord(
                _("attachment {media_id}: {state} items are not archived originals").format(
                    media_id=media_id, state=item.state
                )
            )
        out.append(media_id)
    return out


def add_record(
    session: Session,
    user: User,
    case_id: str,
    data: RecordInput,
    *,
    addr: str = "",
    buffer_s: float = 300.0,
    max_body: int = 200_000,
    max_window_s: float = 86400.0,
    clock: Clock = utcnow,
    record_id: str | None = None,
) -> tuple[TextRecord, list[str]]:
    """Store a new record (or, with ``record_id``, its next version) and apply the auto-link rule.
    Returns the stored version and the media ids it newly linked.

    A record naming officers spans at most ``max_window_s``, and names only officers on the case:
    a records manager (or admin) writing it puts the officers it names on the case; anyone else is
    refused for an officer not yet there (issue 10: the rule must not widen the writer's access)."""
    case = get_case(session, user, case_id)
    require_writer(session, user, case)
    start, end, officers = _check_record(data, max_body)
    if officers and (end - start).total_seconds() > max_window_s:
        raise RecordOutOfBounds(
            _(
                "a record naming officers may span at most {limit:g} h (setting autolink_max_window_s); "
                "this one spans {hours:.1f} h"
            ).format(limit=max_window_s / 3600, hours=(end - start).total_seconds() / 3600)
        )
    # Issue 14: "未经执法资格考试合格…一律不得从事执法活动": refuse (422) naming who and why.
    publicity_roster.check_enforcing_officers(session, officers, local_date(start))
    missing = [b for b in officers if b not in on_case(session, case.id)]
    if missing and can(user, Permission.CASE_OFFICERS_MANAGE):
        for badge in missing:
            put_officer_on_case(session, user, case, badge, _("named by a record"), addr=addr, clock=clock)
    elif missing:
        raise RecordOutOfBounds(
            _("officer {badges} is not on case {case}; a records manager puts officers on a case").format(
                badges=", ".join(missing), case=case.number
            )
        )
    attachments = _attachments(session, user, data.attachments)
    version = 1
    if record_id is not None:
        latest = session.exec(
            select(func.max(TextRecord.version)).where(
                TextRecord.record_id == record_id, TextRecord.case_id == case.id
            )
        ).one()
        if latest is None:
            raise NotFound(
                _("no record {record_id} in case {number}").format(record_id=record_id, number=case.number)
            )
        version = int(latest) + 1
    rec = TextRecord(
        case_id=case.id,
        stage=data.stage,
        doc_kind=data.doc_kind,
        title=data.title.strip(),
        author=data.author.strip(),
        officers=officers,
        occurred_from=start,
        occurred_to=end,
        body=data.body,
        attachments=attachments,
        created_by=user.name,
        created_at=clock(),
        version=version,
    )
    if record_id is not None:
        rec.record_id = record_id
    session.add(rec)
    session.flush()
    for badge in officers:
        session.add(RecordOfficer(record_row=rec.id or 0, badge=badge))
    session.flush()
    log_change(
        session,
        user,
        "record.create" if version == 1 else "record.version",
        "record",
        rec.record_id,
        addr,
        clock,
        case=case.id,
        version=version,
        stage=rec.stage,
        doc_kind=rec.doc_kind,
        officers=officers,
        window=[start.isoformat(), end.isoformat()],
        body_chars=len(rec.body),
    )
    linked: list[str] = []
    for media_id in attachments:
        if find_open_link(session, case.id, media_id) is None:
            make_link(
                session,
                actor(user),
                case,
                media_id,
                LinkSource.ATTACHMENT,
                f"attachment of record {rec.record_id}",
                rec.record_id,
                addr,
                clock,
            )
            linked.append(media_id)
    linked += autolink(session, user, case, rec, buffer_s=buffer_s, addr=addr, clock=clock)
    return rec, linked


def records(
    session: Session,
    user: User,
    case_id: str,
    *,
    all_versions: bool = False,
    include_marked: bool = False,
    purpose: str | None = None,
) -> list[TextRecord]:
    """A case's records. A restricted (marked) record is left out, except for a reader who holds a
    grant for it (or its case) and states ``purpose`` (issue 13; the caller logs each such read with
    ``restricted.log_listed``), or with ``include_marked`` (the archive's own passes, never shown)."""
    case = get_case(session, user, case_id)
    stmt = select(TextRecord).where(TextRecord.case_id == case.id)
    if not include_marked:
        stmt = stmt.where(restricted.listing_clause(user, SubjectKind.RECORD, TextRecord.record_id, purpose))
    rows = list(
        session.exec(
            stmt.order_by(col(TextRecord.occurred_from), col(TextRecord.record_id), col(TextRecord.version))
        )
    )
    if all_versions:
        return rows
    latest: dict[str, TextRecord] = {}
    for r in rows:
        if r.record_id not in latest or r.version > latest[r.record_id].version:
            latest[r.record_id] = r
    return sorted(latest.values(), key=lambda r: (r.occurred_from, r.record_id))


def record_versions(
    session: Session,
    user: User,
    case_id: str,
    record_id: str,
    *,
    purpose: str | None = None,
    addr: str = "",
) -> list[TextRecord]:
    """Every version of a record; a restricted one only with a grant (else 404) and a purpose."""
    case = get_case(session, user, case_id)
    rows = list(
        session.exec(
            select(TextRecord)
            .where(TextRecord.case_id == case.id, TextRecord.record_id == record_id)
            .order_by(col(TextRecord.version))
        )
    )
    if not rows:
        raise NotFound(
            _("no record {record_id} in case {number}").format(record_id=record_id, number=case.number)
        )
    restricted.check_read(session, user, SubjectKind.RECORD, record_id, purpose, addr=addr, action="record")
    return rows


def record_public(r: TextRecord) -> RecordPublic:
    return RecordPublic.model_validate(r.model_dump())


def _fts_query(q: str) -> list[str]:
    # Words only, each quoted: user input never reaches FTS5 or tsquery syntax (no operator injection,
    # no syntax errors on a stray quote). All words must match.
    return list(re.findall(r"\w+", q)[:20])


def search_records(
    session: Session, user: User, q: str, *, limit: int = 50, purpose: str | None = None
) -> list[TextRecord]:
    words = _fts_query(q)
    if not words:
        raise InvalidInput(_("search needs at least one word"))
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            sql_text(
                "SELECT id FROM case_records WHERE search_tsv @@ plainto_tsquery('simple', :q) "
                "ORDER BY ts_rank(search_tsv, plainto_tsquery('simple', :q)) DESC, id DESC LIMIT :n"
            ),
            {"q": " ".join(words), "n": limit * 4},
        ).all()
    else:
        match = " ".join('"' + w.replace('"', "") + '"' for w in words)
        rows = session.execute(
            sql_text(
                "SELECT rowid FROM case_records_fts WHERE case_records_fts MATCH :q ORDER BY rank LIMIT :n"
            ),
            {"q": match, "n": limit * 4},
        ).all()
    ids = [int(r[0]) for r in rows]
    if not ids:
        return []
    found = {
        r.id: r
        for r in session.exec(
            select(TextRecord)
            .join(Case, col(Case.id) == col(TextRecord.case_id))
            .where(
                col(TextRecord.id).in_(ids),
                visible_cases_clause(user),
                restricted.listing_clause(user, SubjectKind.RECORD, TextRecord.record_id, purpose),
            )
        )
    }
    return [found[i] for i in ids if i in found][:limit]


def read_records(
    session: Session,
    user: User,
    case_id: str,
    *,
    all_versions: bool = False,
    addr: str = "",
    purpose: str | None = None,
) -> list[RecordPublic]:
    """A case's records (the current versions, or all), the read logged as ``case.records``; restricted
    records the reader is granted are listed when ``purpose`` is stated, each read logged with it."""
    rows = records(session, user, case_id, all_versions=all_versions, purpose=purpose)
    log_change(session, user, "case.records", "case", case_id, addr, utcnow)
    restricted.log_listed(
        session, user, SubjectKind.RECORD, [r.record_id for r in rows], purpose, via="records", addr=addr
    )
    return [record_public(r) for r in rows]


def read_record_versions(
    session: Session, user: User, case_id: str, record_id: str, *, addr: str = "", purpose: str | None = None
) -> list[RecordPublic]:
    """Every version of one record, oldest first; the read logged as ``case.records``. A restricted
    record needs a grant and ``purpose``."""
    rows = record_versions(session, user, case_id, record_id, purpose=purpose, addr=addr)
    # The record rides along, so access oversight answers who read this record (not only its case).
    log_change(session, user, "case.records", "case", case_id, addr, utcnow, record=record_id)
    return [record_public(r) for r in rows]


def search(
    session: Session, user: User, q: str, *, limit: int = 50, addr: str = "", purpose: str | None = None
) -> list[RecordPublic]:
    """Full-text search over record versions in the cases the caller may see; the query is logged (and
    each restricted record found through a grant, with the stated ``purpose``)."""
    rows = search_records(session, user, q, limit=limit, purpose=purpose)
    log_change(session, user, "records.search", "query", str(len(rows)), addr, utcnow, q=q[:200])
    restricted.log_listed(
        session, user, SubjectKind.RECORD, [r.record_id for r in rows], purpose, via="search", addr=addr
    )
    return [record_public(r) for r in rows]


def relink_case(session: Session, user: User, case_id: str, *, buffer_s: float, addr: str = "") -> list[str]:
    """Apply every record's auto-link rule again (for media docked after the record was written)."""
    case = get_case(session, user, case_id)
    require_writer(session, user, case)
    made: list[str] = []
    for rec in records(session, user, case.id, include_marked=True):
        made += autolink(session, user, case, rec, buffer_s=buffer_s, addr=addr)
    return made

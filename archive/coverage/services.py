"""The recording-item list in force, the activity of each record, and the coverage of a case.

Coverage is measured on the corrected clock: each linked recording's span comes from
``archive.cases.services.corrected_span`` (the one rule that turns a device's time into true time).
Recordings linked as attachments (scans, PDFs) and items without duration (photos) cover nothing.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, actor, authorize
from archive.accounts.models import User
from archive.cases import services as cases
from archive.cases.models import CaseMedia, LinkSource, TextRecord
from archive.clock import Clock, as_utc, utcnow
from archive.coverage import logic
from archive.coverage.errors import InvalidActivity
from archive.coverage.itemlist import ItemList, Mode, default_item_list, parse_item_list
from archive.coverage.models import (
    CaseCoveragePublic,
    GapPublic,
    ItemListPublic,
    ItemListVersion,
    RecordActivity,
    RecordCoveragePublic,
)
from archive.errors import NotFound
from archive.i18n import _
from archive.media.models import Media, MediaState
from archive.restricted import services as restricted
from archive.restricted.models import SubjectKind
from archive.signatures import services as signatures
from archive.signing import Keyring

MAX_REASON = 2000
# Recordings that never became archived originals, or whose bytes retention removed, still count:
# the recording was made (a deleted one was kept its full term). Quarantined and duplicate rows do not.
NOT_RECORDINGS = frozenset({MediaState.QUARANTINED, MediaState.DUPLICATE})


# --------------------------------------------------------------------------- the list


def current_list(session: Session) -> ItemList:
    row = session.exec(select(ItemListVersion).order_by(col(ItemListVersion.version).desc())).first()
    return parse_item_list(row.body) if row else default_item_list()


def list_versions(session: Session, user: User) -> list[ItemListPublic]:
    authorize(user, Permission.RECORDING_LIST_READ)
    rows = list(session.exec(select(ItemListVersion).order_by(col(ItemListVersion.version))))
    if not rows:
        d = default_item_list()
        return [
            ItemListPublic(
                version=d.version, body=d.to_json(), created_by="default", reason="", created_at=None
            )
        ]
    return [ItemListPublic.model_validate(r.model_dump()) for r in rows]


def get_list(session: Session, user: User) -> ItemList:
    authorize(user, Permission.RECORDING_LIST_READ)
    return current_list(session)


def set_list(session: Session, user: User, data: Any, *, reason: str, addr: str = "") -> ItemList:
    """Store the next version of the list (the operator edits it with a reason; both are logged)."""
    authorize(user, Permission.RECORDING_LIST_SET)
    if not reason.strip():
        raise InvalidActivity(_("a change of the recording-item list needs a reason"))
    if not isinstance(data, dict):
        raise InvalidActivity(_("the recording-item list must be a JSON object"))
    current = current_list(session)
    if session.get(ItemListVersion, current.version) is None:
        # Keep the shipped default as version 1 so every version that was ever in force is on record.
        session.add(
            ItemListVersion(
                version=current.version, body=current.to_json(), created_by="system:default", reason="default"
            )
        )
    new = parse_item_list({**data, "version": current.version + 1})
    session.add(
        ItemListVersion(version=new.version, body=new.to_json(), created_by=actor(user), reason=reason)
    )
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="recording.list.set",
        subject_type="recording-list",
        subject_id=str(new.version),
        client_addr=addr,
        details={"reason": reason[:MAX_REASON], "previous_version": current.version},
    )
    return new


# --------------------------------------------------------------------------- record activity


def latest_activities(session: Session, record_ids: Iterable[str]) -> dict[str, RecordActivity]:
    ids = list(record_ids)
    out: dict[str, RecordActivity] = {}
    for i in range(0, len(ids), 500):
        rows = session.exec(
            select(RecordActivity)
            .where(col(RecordActivity.record_id).in_(ids[i : i + 500]))
            .order_by(col(RecordActivity.id))
        )
        for r in rows:
            out[r.record_id] = r  # ordered by id: the last one wins
    return out


def check_activity(items: ItemList, activity: str, reason: str) -> str:
    """The cleaned reason, or InvalidActivity (422) for an unknown activity or a misplaced claim."""
    entry = items.get(activity)
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise InvalidActivity(_("the reason is over {n} characters").format(n=MAX_REASON))
    if reason and not entry.text_exception:
        raise InvalidActivity(
            _(
                "activity {key} ({zh}) does not allow recording in text alone; no reason can be claimed"
            ).format(key=entry.key, zh=entry.zh)
        )
    return reason


def set_activity(
    session: Session,
    user: User,
    case_id: str,
    record_id: str,
    activity: str,
    *,
    reason: str = "",
    addr: str = "",
    clock: Clock = utcnow,
) -> RecordActivity:
    """Say which activity of the list a record documents; with ``reason`` the officer claims the
    list's exception (the activity is recorded in text alone, and why)."""
    case = cases.get_case(session, user, case_id)
    cases.require_writer(session, user, case)
    found = session.exec(
        select(TextRecord.id).where(TextRecord.case_id == case.id, TextRecord.record_id == record_id)
    ).first()
    if found is None:
        raise NotFound(_("no record {rid} in case {number}").format(rid=record_id[:40], number=case.number))
    items = current_list(session)
    clean = check_activity(items, activity, reason)
    row = RecordActivity(
        case_id=case.id,
        record_id=record_id,
        activity=activity,
        no_recording_reason=clean,
        item_list_version=items.version,
        set_by=actor(user),
        set_at=clock(),
    )
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="record.activity",
        subject_type="record",
        subject_id=record_id,
        client_addr=addr,
        clock=clock,
        details={
            "case": case.id,
            "activity": activity,
            "no_recording_reason": clean,
            "item_list_version": items.version,
        },
    )
    return row


# --------------------------------------------------------------------------- coverage


@dataclass(frozen=True)
class Recording:
    media_id: str
    span: logic.Span


def recording_spans(media: Iterable[Media]) -> list[Recording]:
    out: list[Recording] = []
    for m in media:
        if m.state in NOT_RECORDINGS:
            continue
        span = cases.corrected_span(m)
        if span is not None and span[1] > span[0]:
            out.append(Recording(m.id, span))
    return out


def case_recordings(
    session: Session, case_id: str, user: User | None = None, purpose: str | None = None
) -> list[Recording]:
    """Recordings linked (open links, not attachments) to the case, with their corrected spans. A marked
    recording counts only for a reader granted it who states ``purpose`` (else it is absent)."""
    ids = select(CaseMedia.media_id).where(
        CaseMedia.case_id == case_id,
        col(CaseMedia.unlinked_at).is_(None),
        CaseMedia.source != LinkSource.ATTACHMENT,
    )
    listed = (
        restricted.listing_clause(user, SubjectKind.MEDIA, Media.id, purpose)
        if user is not None
        else restricted.unmarked_clause(SubjectKind.MEDIA, Media.id)
    )
    return recording_spans(session.exec(select(Media).where(col(Media.id).in_(ids), listed)))


@dataclass(frozen=True)
class RecordRow:
    """What coverage reads of a record version (not its body)."""

    record_id: str
    version: int
    title: str
    officers: list[str]
    occurred_from: datetime
    occurred_to: datetime


class _Index:
    """Recordings sorted by start, to find those overlapping a window without scanning them all."""

    def __init__(self, recordings: Sequence[Recording]) -> None:
        self.items = sorted(recordings, key=lambda r: r.span[0])
        self.starts = [r.span[0] for r in self.items]
        self.longest = max((r.span[1] - r.span[0] for r in self.items), default=timedelta(0))

    def overlapping(self, start: datetime, end: datetime) -> list[str]:
        lo = bisect.bisect_left(self.starts, start - self.longest)
        out = []
        for r in self.items[lo:]:
            a, b = r.span
            if a > end or (a == end and start < end):
                break
            if (a < end and b > start) if start < end else (a <= start <= b):
                out.append(r.media_id)
        return out


def record_coverage(
    rec: RecordRow | TextRecord,
    act: RecordActivity | None,
    items: ItemList,
    merged: logic.Merged,
    index: _Index,
) -> RecordCoveragePublic:
    start, end = as_utc(rec.occurred_from), as_utc(rec.occurred_to)
    entry = items.find(act.activity) if act is not None else None
    mode = entry.mode if entry else None
    tol = items.tolerance_s(entry) if entry else items.gap_tolerance_s
    reason = act.no_recording_reason if act else ""
    res = logic.measure((start, end), merged, mode, tolerance_s=tol, reason=reason)
    # model_construct: every value is ours and already typed; validating 1,000 rows per call costs more
    # than the coverage itself.
    return RecordCoveragePublic.model_construct(
        record_id=rec.record_id,
        version=rec.version,
        title=rec.title,
        officers=list(rec.officers),
        start=start,
        end=end,
        activity=act.activity if act else None,
        activity_zh=entry.zh if entry else None,
        mode=mode.value if mode else None,
        status=res.status.value,
        status_zh=logic.STATUS_LABELS_ZH[res.status],
        reason=reason,
        gaps=[
            GapPublic.model_construct(start=a, end=b, seconds=(b - a).total_seconds()) for a, b in res.gaps
        ],
        covered_s=res.covered_s,
        window_s=res.window_s,
        recordings=index.overlapping(start, end),
    )


def compute_case(
    items: ItemList,
    case_id: str,
    recs: Sequence[RecordRow | TextRecord],
    acts: dict[str, RecordActivity],
    recordings: Sequence[Recording],
) -> CaseCoveragePublic:
    merged = logic.merge(r.span for r in recordings)
    index = _Index(recordings)
    out = [record_coverage(r, acts.get(r.record_id), items, merged, index) for r in recs]
    counts = {s.value: 0 for s in logic.Status}
    for c in out:
        counts[c.status] += 1
    return CaseCoveragePublic(
        case_id=case_id,
        item_list_version=items.version,
        tolerance_s=items.gap_tolerance_s,
        records=out,
        counts=counts,
    )


def latest_records(
    session: Session, case_id: str, user: User | None = None, purpose: str | None = None
) -> list[RecordRow]:
    """The latest version of each record of the case, without bodies, in time order (a marked record
    only for a reader granted it who states ``purpose``)."""
    latest: dict[str, RecordRow] = {}
    for rid, version, title, officers, start, end in session.execute(
        sa_select(
            col(TextRecord.record_id),
            col(TextRecord.version),
            col(TextRecord.title),
            col(TextRecord.officers),
            col(TextRecord.occurred_from),
            col(TextRecord.occurred_to),
        ).where(
            col(TextRecord.case_id) == case_id,
            restricted.listing_clause(user, SubjectKind.RECORD, TextRecord.record_id, purpose)
            if user is not None
            else restricted.unmarked_clause(SubjectKind.RECORD, TextRecord.record_id),
        )
    ):
        prev = latest.get(rid)
        if prev is None or version > prev.version:
            latest[rid] = RecordRow(rid, version, title, list(officers), start, end)
    return sorted(latest.values(), key=lambda r: (as_utc(r.occurred_from), r.record_id))


def case_coverage(
    session: Session,
    user: User,
    case_id: str,
    *,
    addr: str = "",
    log: bool = True,
    purpose: str | None = None,
) -> CaseCoveragePublic:
    """Coverage of every record (latest version) of a case the caller may see. Restricted records and
    recordings the caller holds a grant for count when ``purpose`` is stated (each a logged read)."""
    case = cases.get_case(session, user, case_id)
    recs = latest_records(session, case.id, user, purpose)
    acts = latest_activities(session, (r.record_id for r in recs))
    recordings = case_recordings(session, case.id, user, purpose)
    result = compute_case(current_list(session), case.id, recs, acts, recordings)
    if log:
        for kind, ids in (
            (SubjectKind.RECORD, [r.record_id for r in recs]),
            (SubjectKind.MEDIA, [r.media_id for r in recordings]),
        ):
            restricted.log_listed(session, user, kind, ids, purpose, via="coverage", addr=addr)
    if log:
        events.record(
            session,
            actor=actor(user),
            action="case.coverage",
            subject_type="case",
            subject_id=case.id,
            client_addr=addr,
            details={"counts": result.counts},
        )
    return result


def require_mode(items: ItemList, activity: str) -> Mode:
    return items.get(activity).mode


def write_record(
    session: Session,
    user: User,
    keyring: Keyring,
    case_id: str,
    data: cases.RecordInput,
    *,
    activity: str | None,
    no_recording_reason: str = "",
    record_id: str | None = None,
    buffer_s: float,
    max_body: int,
    max_window_s: float = 86400.0,
    addr: str = "",
) -> tuple[TextRecord, list[str]]:
    """A record version as the whole-process rules want it written: stored (and auto-linked), signed by
    the archive, and, when given, its activity of the recording-item list set in the same transaction
    (an unknown activity refuses the whole write)."""
    rec, linked = cases.add_record(
        session,
        user,
        case_id,
        data,
        addr=addr,
        buffer_s=buffer_s,
        max_body=max_body,
        max_window_s=max_window_s,
        record_id=record_id,
    )
    signatures.countersign(session, keyring, rec)
    if activity is not None:
        set_activity(session, user, case_id, rec.record_id, activity, reason=no_recording_reason, addr=addr)
    return rec, linked

"""The case timeline: records and linked media on one corrected clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from archive.access import Permission, can
from archive.accounts.models import User
from archive.cases.access import get_case, log_change
from archive.cases.cases import case_public
from archive.cases.linking import corrected_span, correction_note, device_start, links
from archive.cases.models import (
    CaseMedia,
    Timeline,
    TimelineMedia,
    TimelineRecord,
)
from archive.cases.records import records
from archive.clock import Clock, as_utc, utcnow
from archive.config import get_settings
from archive.media.models import Derivative, DerivativeKind, Media
from archive.restricted import services as restricted
from archive.restricted.models import SubjectKind

# --------------------------------------------------------------------------- timeline


@dataclass
class _Row:
    at: datetime | None
    order: int
    item: TimelineMedia | TimelineRecord = field(compare=False)


def timeline(
    session: Session,
    user: User,
    case_id: str,
    *,
    addr: str = "",
    via: str = "api",
    clock: Clock = utcnow,
    purpose: str | None = None,
    coverage: bool = False,
) -> Timeline:
    """Text records (latest versions) and linked media in time order on the corrected clock. Restricted
    items the reader holds a grant for are on it when ``purpose`` is stated, each a logged read."""
    case = get_case(session, user, case_id)
    log_change(session, user, "case.timeline", "case", case.id, addr, clock, via=via)
    recs = records(session, user, case.id, purpose=purpose)
    open_links = links(session, user, case.id, purpose=purpose)
    by_media: dict[str, list[CaseMedia]] = {}
    for ln in open_links:
        if ln.pending and not can(user, Permission.MEDIA_READ_ALL):
            continue  # a pending auto-link shows nothing of the recording until confirmed
        by_media.setdefault(ln.media_id, []).append(ln)
    media_rows = (
        list(session.exec(select(Media).where(col(Media.id).in_(list(by_media))))) if by_media else []
    )
    ders: dict[tuple[str, DerivativeKind], Derivative] = {}
    if media_rows:
        for d in session.exec(select(Derivative).where(col(Derivative.media_id).in_(list(by_media)))):
            ders[(d.media_id, d.kind)] = d
    covered = _coverage(session, user, case.id, recs, purpose) if coverage else {}
    rows: list[_Row] = []
    for r in recs:
        rows.append(
            _Row(
                as_utc(r.occurred_from),
                1,
                TimelineRecord(
                    record_id=r.record_id,
                    version=r.version,
                    stage=r.stage,
                    doc_kind=r.doc_kind,
                    title=r.title,
                    author=r.author,
                    officers=r.officers,
                    start=as_utc(r.occurred_from),
                    end=as_utc(r.occurred_to),
                    body=r.body,
                    attachments=r.attachments,
                    coverage=covered.get(r.record_id),
                ),
            )
        )
    # Straight from storage when browsers can read it there (not SSE-C objects: then the API streams).
    via_storage = "&via=storage" if get_settings().browsers_stream_from_storage() else ""
    for m in media_rows:
        span = corrected_span(m)
        proxy = ders.get((m.id, DerivativeKind.PROXY))
        poster = ders.get((m.id, DerivativeKind.POSTER))
        # The case rides along so the stream's custody event says through which case it was watched.
        rows.append(
            _Row(
                span[0] if span else None,
                0,
                TimelineMedia(
                    id=m.id,
                    kind=str((m.probe or {}).get("kind") or "unknown"),
                    file_name=m.file_name,
                    state=m.state,
                    officer=m.officer_badge,
                    device=m.device_serial,
                    start=span[0] if span else None,
                    end=span[1] if span else None,
                    duration_s=(m.probe or {}).get("duration_s"),
                    recorded_at_device=dev[0] if (dev := device_start(m)) else None,
                    device_time_source=dev[1] if dev else None,
                    clock_offset_s=m.clock_offset_s,
                    clock_source=m.clock_source,
                    correction=correction_note(m),
                    proxy_url=f"/api/v1/media/{m.id}/proxy?case={case.id}{via_storage}" if proxy else None,
                    poster_url=f"/api/v1/media/{m.id}/poster?case={case.id}" if poster else None,
                    proxy_type=proxy.content_type if proxy else None,
                    links=[
                        {"source": ln.source, "reason": ln.reason, "record_id": ln.record_id}
                        for ln in by_media[m.id]
                    ],
                ),
            )
        )
    where = f"timeline-{via}"
    shown = (
        (SubjectKind.RECORD, [r.record_id for r in recs]),
        (SubjectKind.MEDIA, [m.id for m in media_rows]),
    )
    for kind, ids in shown:
        restricted.log_listed(session, user, kind, ids, purpose, via=where, addr=addr, clock=clock)
    far = datetime.max.replace(tzinfo=UTC)
    rows.sort(
        key=lambda r: (r.at or far, r.order, getattr(r.item, "id", "") or getattr(r.item, "record_id", ""))
    )
    return Timeline(case=case_public(session, case), items=[r.item for r in rows])


def _coverage(
    session: Session, user: User, case_id: str, recs: list[Any], purpose: str | None
) -> dict[str, dict[str, Any]]:
    """Each listed record's coverage by the rule of GET /cases/{id}/coverage, over the recordings the
    reader may count (a marked one only with a grant and a purpose)."""
    from archive.coverage import services as coverage  # coverage builds on the case services

    acts = coverage.latest_activities(session, (r.record_id for r in recs))
    recordings = coverage.case_recordings(session, case_id, user, purpose)
    result = coverage.compute_case(coverage.current_list(session), case_id, recs, acts, recordings)
    return {
        c.record_id: {
            "status": c.status,
            "status_zh": c.status_zh,
            "gaps": [g.model_dump(mode="json") for g in c.gaps],
        }
        for c in result.records
    }

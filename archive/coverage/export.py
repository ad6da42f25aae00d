"""What a case export carries of whole-process recording: coverage (with what the offline verifier
needs to recompute it), the signatures on every record version with the authors' public keys, the
marks of restricted items the exporter was granted, and the copy-out approval that allowed it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from archive.accounts.models import User
from archive.cases import services as cases
from archive.cases.models import CaseMedia, LinkSource, TextRecord
from archive.clock import as_utc
from archive.coverage import services as coverage
from archive.coverage.itemlist import Mode
from archive.media.models import Media
from archive.restricted import services as restricted
from archive.restricted.models import Mark, SubjectKind
from archive.signatures import services as signatures


@dataclass
class ExportParts:
    hidden_records: frozenset[str]
    hidden_media: frozenset[str]
    files: dict[str, Any] = field(default_factory=dict)


def hidden_for(session: Session, user: User | None) -> restricted.Hidden:
    """Marked items the exporter holds no grant for. Without a user (an operator's CLI export) every
    marked item is left out: marks never leave the archive unless a named person was granted them."""
    if user is None:
        marks = session.exec(select(Mark).where(col(Mark.lifted_at).is_(None))).all()
        return restricted.Hidden(
            frozenset(m.subject_id for m in marks if m.subject_kind is SubjectKind.RECORD),
            frozenset(m.subject_id for m in marks if m.subject_kind is SubjectKind.MEDIA),
        )
    return restricted.hidden(session, user)


def export_parts(
    session: Session,
    user: User | None,
    case_id: str,
    record_rows: Sequence[TextRecord],
    media_ids: Sequence[str],
    hidden: restricted.Hidden,
) -> ExportParts:
    items = coverage.current_list(session)
    latest: dict[str, TextRecord] = {}
    for r in record_rows:
        if r.record_id not in latest or r.version > latest[r.record_id].version:
            latest[r.record_id] = r
    recs = sorted(latest.values(), key=lambda r: (as_utc(r.occurred_from), r.record_id))
    acts = coverage.latest_activities(session, latest)
    link_ids = select(CaseMedia.media_id).where(
        CaseMedia.case_id == case_id,
        col(CaseMedia.unlinked_at).is_(None),
        CaseMedia.source != LinkSource.ATTACHMENT,
        col(CaseMedia.pending).is_(False),  # as coverage.case_recordings
    )
    media = [
        m for m in session.exec(select(Media).where(col(Media.id).in_(link_ids))) if m.id not in hidden.media
    ]
    recordings = coverage.recording_spans(media)
    result = coverage.compute_case(items, case_id, recs, acts, recordings)
    by_id = {m.id: m for m in media}
    rec_docs = []
    for c in result.records:
        entry = items.find(c.activity) if c.activity else None
        rec_docs.append(
            {
                "record_id": c.record_id,
                "version": c.version,
                "start": c.start.isoformat(),
                "end": c.end.isoformat(),
                "activity": c.activity,
                "mode": c.mode,
                "tolerance_s": items.tolerance_s(entry) if entry else items.gap_tolerance_s,
                "reason": c.reason,
                "status": c.status,
                "gaps": [[g.start.isoformat(), g.end.isoformat()] for g in c.gaps],
            }
        )
    rec_media = []
    for rec_m in recordings:
        m = by_id[rec_m.media_id]
        found = cases.device_start(m)
        rec_media.append(
            {
                "media_id": rec_m.media_id,
                "device_start": found[0].isoformat() if found else None,
                "clock_offset_s": m.clock_offset_s,
                "duration_s": (m.probe or {}).get("duration_s"),
                "span": [rec_m.span[0].isoformat(), rec_m.span[1].isoformat()],
            }
        )
    sigs = [s for s in signatures.case_signatures(session, case_id) if s.record_id not in hidden.records]
    authors = signatures.signer_keys(session, sorted({s.key_id for s in sigs if s.kind.value == "author"}))
    marks = [
        restricted.mark_public(m).model_dump(mode="json")
        for m in session.exec(select(Mark).where(col(Mark.lifted_at).is_(None)))
        if (m.subject_kind is SubjectKind.RECORD and m.subject_id in latest)
        or (m.subject_kind is SubjectKind.MEDIA and m.subject_id in media_ids)
    ]
    files: dict[str, Any] = {
        "records/coverage.json": {
            "item_list": items.to_json(),
            "required_modes": [Mode.AV.value, Mode.WHOLE_PROCESS.value],
            "records": rec_docs,
            "recordings": rec_media,
            "counts": result.counts,
        },
        "records/signatures.json": {
            "signatures": [
                {
                    "record_id": s.record_id,
                    "version": s.version,
                    "kind": s.kind.value,
                    "signer": s.signer,
                    "key_id": s.key_id,
                    "signature": s.signature_b64,
                    "document_sha256": s.document_sha256,
                    "signed_at": as_utc(s.signed_at).isoformat(),
                }
                for s in sigs
            ],
            "author_keys": [
                {"key_id": k.key_id, "user_name": k.user_name, "public_key_pem": k.public_key_pem}
                for k in authors
            ],
        },
    }
    if marks:
        files["restricted.json"] = {"marks": marks, "exported_by_grant_to": user.name if user else None}
    return ExportParts(hidden.records, hidden.media, files)

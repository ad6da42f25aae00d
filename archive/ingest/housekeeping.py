"""Housekeeping of uploads: abandoned ones are aborted in S3, their tails removed.

An S3 multipart upload that is neither completed nor aborted keeps its parts forever (they are
invisible to object listings and count against the pool). An open upload untouched for longer than
the resume window (``upload_resume_window_s``) will not be resumed: its multipart upload is
aborted, its tus tail object deleted, and the row marked terminated, with a custody-log event.
Multipart uploads that S3 holds under the originals prefix but no open upload owns (an API that
died between starting one and committing its row) and tail objects of uploads no longer open are
removed once they are older than the window too.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive import events
from archive.clock import Clock, as_utc, utcnow
from archive.db import session_scope
from archive.errors import ObjectMissing
from archive.ingest.models import Upload, UploadState
from archive.storage import ObjectStore

log = logging.getLogger("custody.ingest.housekeeping")
ORIGINALS_PREFIX = "originals/"
TAILS_PREFIX = "tus-tails/"


@dataclass
class SweepReport:
    abandoned: list[str] = field(default_factory=list)  # upload ids terminated
    orphan_multiparts: list[str] = field(default_factory=list)  # S3 keys whose multipart was aborted
    tails_removed: list[str] = field(default_factory=list)


def sweep_abandoned_uploads(
    engine: Engine,
    store: ObjectStore,
    *,
    window: timedelta,
    clock: Clock = utcnow,
    batch: int = 200,
) -> SweepReport:
    report = SweepReport()
    cutoff = clock() - window
    bucket = store.originals
    while True:
        with session_scope(engine) as session:
            rows = list(
                session.exec(
                    select(Upload)
                    .where(Upload.state == UploadState.OPEN, col(Upload.updated_at) < cutoff)
                    .order_by(col(Upload.updated_at))
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            )
            for up in rows:
                if up.multipart_id:
                    with contextlib.suppress(ObjectMissing):
                        store.abort_multipart(bucket, up.object_key, up.multipart_id)
                if up.tail_size:
                    store.delete(bucket, f"{TAILS_PREFIX}{up.id}")
                    report.tails_removed.append(up.id)
                idle = clock() - as_utc(up.updated_at)
                up.state = UploadState.TERMINATED
                up.updated_at = clock()
                session.add(up)
                events.record(
                    session,
                    actor=events.SYSTEM_WORKER,
                    action="upload.abandon",
                    subject_type="upload",
                    subject_id=up.id,
                    details={
                        "offset": up.offset,
                        "length": up.length,
                        "idle_s": round(idle.total_seconds()),
                        "resume_window_s": window.total_seconds(),
                    },
                    clock=clock,
                )
                report.abandoned.append(up.id)
        if len(rows) < batch:
            break
    with Session(engine) as session:
        open_multiparts = set(
            session.exec(select(Upload.multipart_id).where(Upload.state == UploadState.OPEN))
        )
        open_ids = set(session.exec(select(Upload.id).where(Upload.state == UploadState.OPEN)))
    for mp in store.list_multipart_uploads(bucket, ORIGINALS_PREFIX):
        if mp.upload_id in open_multiparts or mp.initiated is None or as_utc(mp.initiated) >= cutoff:
            continue
        with contextlib.suppress(ObjectMissing):
            store.abort_multipart(bucket, mp.key, mp.upload_id)
        log.warning("aborted orphan multipart upload %s of %s", mp.upload_id, mp.key)
        report.orphan_multiparts.append(mp.key)
    for key, modified in store.list_keys_modified(bucket, TAILS_PREFIX):
        upload_id = key.removeprefix(TAILS_PREFIX)
        if upload_id in open_ids or as_utc(modified) >= cutoff:
            continue
        store.delete(bucket, key)
        report.tails_removed.append(upload_id)
    return report

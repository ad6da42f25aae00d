"""Abandoned uploads are aborted in S3 (real Ceph RGW) and their tails removed; live ones stay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.accounts.models import User
from archive.clock import utcnow
from archive.db import session_scope
from archive.errors import ObjectMissing
from archive.ingest import uploads
from archive.ingest.housekeeping import sweep_abandoned_uploads
from archive.ingest.models import Upload, UploadState
from archive.models import Event
from archive.storage import MinioStore
from tests.conftest import PART


def _upload(engine: Engine, store: MinioStore, user_name: str, tail: bytes = b"") -> str:
    with session_scope(engine) as session:
        user = session.exec(select(User).where(User.name == user_name)).one()
        up = uploads.create_upload(
            session,
            user=user,
            length=3 * PART,
            meta={"filename": "a.mp4", "officer": user_name, "device": "BC-1", "sha256": "deferred"},
            part_size=PART,
            max_bytes=10 * PART,
            client_addr="127.0.0.1",
            store=store,
        )
        etag = store.upload_part(store.originals, up.object_key, up.multipart_id or "", 1, b"x" * PART)
        up.parts = [{"n": 1, "etag": etag, "size": PART}]
        up.offset = PART
        if tail:
            store.put_bytes(store.originals, uploads.tail_key(up), tail, "application/octet-stream")
            up.tail_size = len(tail)
            up.offset += len(tail)
        return up.id


def test_abandoned_multipart_uploads_are_aborted_and_tails_removed(
    engine: Engine, store: MinioStore, make_user: Any
) -> None:
    make_user("0815", "officer")
    abandoned = _upload(engine, store, "0815", tail=b"t" * 1000)
    live = _upload(engine, store, "0815")
    orphan_id = store.start_multipart(store.originals, "originals/orphan", "video/mp4")
    store.put_bytes(store.originals, "tus-tails/gone", b"old tail", "application/octet-stream")

    window = timedelta(days=1)
    later = utcnow() + window + timedelta(hours=1)  # the injected clock: everything above is old now
    with session_scope(engine) as session:
        up = session.get(Upload, live)
        assert up is not None
        up.updated_at = later - timedelta(minutes=5)  # still being resumed

    report = sweep_abandoned_uploads(engine, store, window=window, clock=lambda: later)

    assert report.abandoned == [abandoned]
    assert report.orphan_multiparts == ["originals/orphan"]
    assert sorted(report.tails_removed) == sorted([abandoned, "gone"])
    with Session(engine) as session:
        gone = session.get(Upload, abandoned)
        kept = session.get(Upload, live)
        assert gone is not None and kept is not None
        assert gone.state is UploadState.TERMINATED and kept.state is UploadState.OPEN
        ev = session.exec(select(Event).where(Event.action == "upload.abandon")).one()
        assert ev.subject_id == abandoned and ev.actor == "system:worker"
    pending = {m.upload_id for m in store.list_multipart_uploads(store.originals, "")}
    assert pending == {kept.multipart_id}
    with pytest.raises(ObjectMissing):
        store.list_parts(store.originals, gone.object_key, gone.multipart_id or "")
    assert [
        p.number for p in store.list_parts(store.originals, kept.object_key, kept.multipart_id or "")
    ] == [1]
    assert not store.exists(store.originals, uploads.tail_key(gone))
    assert not store.exists(store.originals, "tus-tails/gone")
    assert orphan_id not in pending

    # Run again: nothing left to do.
    again = sweep_abandoned_uploads(engine, store, window=window, clock=lambda: later)
    assert again.abandoned == [] and again.orphan_multiparts == [] and again.tails_removed == []

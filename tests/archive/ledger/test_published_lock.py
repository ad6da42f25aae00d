"""Checkpoints and log segments published to S3 are under Object Lock: COMPLIANCE retention set in the
same request that writes them, so no version can be deleted, whoever holds the keys. Objects published
before the lock existed are named by verify and locked by the next publish. On Ceph RGW, never a stand-in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio.error import S3Error
from sqlalchemy.engine import Engine
from sqlmodel import Session

from archive import events
from archive.audit.models import Problem, Report
from archive.db import session_scope
from archive.ledger import publish
from archive.ledger import services as ledger
from archive.signing import Keyring
from archive.storage import MinioStore


def _events(engine: Engine, n: int) -> None:
    with session_scope(engine) as s:
        for i in range(n):
            events.record(
                s, actor="user:clerk", action="case.create", subject_type="case", subject_id=f"c{i}"
            )


def _checkpoint(engine: Engine, keyring: Keyring) -> int:
    with session_scope(engine) as s:
        return ledger.sign_checkpoint(s, keyring).tree_size


def _verify(engine: Engine, store: MinioStore, keyring: Keyring) -> list[tuple[str, str]]:
    report = Report(started_at=datetime.now(UTC))
    with Session(engine) as s:
        publish.verify_published(s, store, keyring, report)
    return [(d.problem.value, d.subject) for d in report.discrepancies]


class _UnlockedWrites:
    """The real store, written to as publish did before checkpoints were locked (no retention)."""

    def __init__(self, store: MinioStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str, retain_until: datetime | None = None
    ) -> None:
        self._store.put_bytes(bucket, key, data, content_type)


def test_published_objects_are_locked_and_cannot_be_deleted(
    engine: Engine, store: MinioStore, tmp_path: Path
) -> None:
    keyring = Keyring(tmp_path / "keys")
    _events(engine, 3)
    size = _checkpoint(engine, keyring)
    with Session(engine) as s:
        assert publish.publish(s, store, lock_years=30) == size
    keys = publish.published_keys(store)
    assert keys == [publish.checkpoint_key(size), publish.segment_key(0, size)]
    for key in keys:
        until = store.lock_state(store.originals, key).retain_until
        assert until is not None and until > datetime.now(UTC) + timedelta(days=29 * 365), (key, until)
        # deleting the stored version is refused by S3 itself, for the archive's own keys too
        (version,) = [
            o.version_id
            for o in store.client.list_objects(store.originals, prefix=key, include_version=True)
            if not o.is_delete_marker
        ]
        with pytest.raises(S3Error) as refused:
            store.client.remove_object(store.originals, key, version_id=version)
        assert refused.value.code == "AccessDenied", refused.value
        assert store.exists(store.originals, key)
    assert _verify(engine, store, keyring) == []


def test_objects_published_unlocked_are_named_then_locked_by_the_next_publish(
    engine: Engine, store: MinioStore, tmp_path: Path
) -> None:
    keyring = Keyring(tmp_path / "keys")
    _events(engine, 2)
    size = _checkpoint(engine, keyring)
    with Session(engine) as s:
        assert publish.publish(s, _UnlockedWrites(store)) == size  # type: ignore[arg-type]
    problems = _verify(engine, store, keyring)
    named = [f"{store.originals}/{key}" for key in publish.published_keys(store)]
    assert sorted(problems) == sorted((Problem.PUBLISHED_UNLOCKED.value, subject) for subject in named)
    assert len(problems) == 2

    # the next publish, even with nothing new to publish, locks what is there
    with Session(engine) as s:
        assert publish.publish(s, store) == size
    for key in publish.published_keys(store):
        assert store.lock_state(store.originals, key).retain_until is not None, key
    assert _verify(engine, store, keyring) == []

    # and a later checkpoint is published locked beside them
    _events(engine, 2)
    later = _checkpoint(engine, keyring)
    with Session(engine) as s:
        assert publish.publish(s, store) == later
    assert len(publish.published_keys(store)) == 4
    assert _verify(engine, store, keyring) == []

"""Verification anchored in the custody log, not only in what the database still says: a media row
moved to "deleted" by hand (to take it out of the check), a media row removed outright, a retention
deletion without (or with a forged) signed tombstone. Against PostgreSQL and S3."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.audit import services as audit
from archive.audit.models import Problem
from archive.ingest import pipeline
from archive.media.models import Media
from archive.models import Tombstone
from archive.signing import Keyring
from archive.storage import MinioStore
from retention import services as rs
from tests.archive.audit.test_audit import archived, ctx, dba, found, run_verify, samples  # noqa: F401  (fixtures)
from tests.retention.test_retention import archived as archived_bytes


def test_row_hidden_as_deleted_or_removed_is_named(
    ctx: pipeline.Context,  # noqa: F811
    archived: list[Media],  # noqa: F811
) -> None:
    hidden, removed = archived
    # An insider swaps the bytes of one original and marks its row deleted so no check looks at it...
    data = bytearray(ctx.store.read_bytes(ctx.store.originals, hidden.object_key))
    data[7] ^= 0x10
    ctx.store.put_bytes(ctx.store.originals, hidden.object_key, bytes(data), "video/mp4")
    dba(ctx.engine, f"UPDATE media SET state = 'deleted' WHERE id = '{hidden.id}'")  # noqa: S608
    # ...and removes the other item's rows altogether.
    dba(
        ctx.engine,
        *(
            f"DELETE FROM {t} WHERE media_id = '{removed.id}'"  # noqa: S608
            for t in ("manifests", "derivatives", "retention_status")
        ),
        f"DELETE FROM media WHERE id = '{removed.id}'",  # noqa: S608
    )
    report = run_verify(ctx)
    state = found(report, Problem.ROW_CHANGED, f"media {hidden.id}")
    assert any("state is 'deleted'" in h and "'ready'" in h for h in state), report.discrepancies
    assert found(report, Problem.TOMBSTONE_MISSING, f"media {hidden.id}")
    assert found(report, Problem.BYTES_CHANGED, f"media {hidden.id} original")  # still re-hashed
    gone = found(report, Problem.ROW_CHANGED, f"media {removed.id}")
    assert len(gone) == 1 and "row was deleted" in gone[0] and removed.archived_sha256 in gone[0], gone


def test_retention_deletion_verifies_and_a_forged_tombstone_is_named(
    engine: Engine, store: MinioStore, settings: Any
) -> None:
    keyring = Keyring(settings.resolved_key_dir())
    m = archived_bytes(engine, store, datetime.now(UTC) - timedelta(days=200))
    rs.classify_pending(engine, store)
    assert [e["media_id"] for e in rs.sweep(engine, store, keyring).deleted] == [m.id]
    report = audit.verify_all(engine, store, keyring)
    assert report.ok, report.discrepancies  # deleted by the rules: a signed tombstone, no bytes
    assert report.signatures_checked == 1
    with Session(engine) as s:
        stone = s.exec(select(Tombstone)).one()
    forged = {**stone.body, "rule": "permanent-by-hand"}
    dba(engine, "DROP TRIGGER tombstones_append_only ON tombstones")
    with engine.begin() as conn:
        conn.execute(text("UPDATE tombstones SET body = :b"), {"b": json.dumps(forged)})
    report = audit.verify_all(engine, store, keyring)
    assert found(report, Problem.TOMBSTONE_INVALID, f"media {m.id}"), report.discrepancies
    dba(engine, "DELETE FROM tombstones")
    report = audit.verify_all(engine, store, keyring)
    assert found(report, Problem.TOMBSTONE_MISSING, f"media {m.id}"), report.discrepancies

"""Signing keys: created on first use with owner-only permissions, never written to a log; after a
rotation old manifests and old checkpoints still verify and /api/v1/keys lists every key."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from archive.db import session_scope
from archive.ingest import pipeline
from archive.ledger import services as ledger
from archive.ledger.models import Checkpoint
from archive.media.models import Manifest, Media
from archive.models import Event
from archive.signing import Keyring, Signature
from tests.archive.audit.test_audit import archived, ctx, run_verify, samples  # noqa: F401  (fixtures)
from tests.conftest import LiveAPI


def test_private_key_is_created_owner_only(tmp_path: Path) -> None:
    ring = Keyring(tmp_path / "keys")
    key_id = ring.current_key_id()
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "keys" / f"{key_id}.pem").stat().st_mode) == 0o600
    new = ring.rotate()
    assert stat.S_IMODE((tmp_path / "keys" / f"{new}.pem").stat().st_mode) == 0o600


def test_rotation_keeps_old_manifests_and_checkpoints_verifiable_and_keys_never_logged(
    ctx: pipeline.Context,  # noqa: F811
    archived: list[Media],  # noqa: F811
    live_api: LiveAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with Session(ctx.engine) as s:
        old_manifest = s.exec(select(Manifest).where(Manifest.media_id == archived[0].id)).one()
        old_cp = s.exec(select(Checkpoint)).one()
    old_key = ctx.keyring.current_key_id()
    assert old_manifest.key_id == old_key == old_cp.key_id

    new_key = ctx.keyring.rotate()
    assert new_key != old_key and ctx.keyring.current_key_id() == new_key
    with session_scope(ctx.engine) as s:
        new_cp = ledger.sign_checkpoint(s, ctx.keyring)
    assert new_cp.key_id == new_key
    # Signed before the rotation, checked after it.
    ctx.keyring.verify(old_manifest.body, Signature(old_manifest.key_id, old_manifest.signature))
    ledger.verify_checkpoint(old_cp, ctx.keyring.public_keys(), ctx.keyring)
    report = run_verify(ctx)
    assert report.ok, report.discrepancies
    assert report.signatures_checked == 2 and report.checkpoints_checked == 2

    listed = {k["key_id"] for k in httpx.get(f"{live_api.url}/api/v1/keys").json()["keys"]}
    assert listed == {old_key, new_key}

    # No private key material in the application's logs or in the custody log.
    secrets = [p.read_text() for p in ctx.keyring.key_dir.glob("*.pem")]
    body = "PRIVATE KEY"
    assert all(body in s for s in secrets)
    assert body not in caplog.text
    assert body not in (live_api.tmp / "api.log").read_text()
    with Session(ctx.engine) as s:
        assert not [e.id for e in s.exec(select(Event)) if body in str(e.details)]

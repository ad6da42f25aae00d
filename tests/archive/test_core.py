"""Core pieces a court relies on: digests, signatures and keys, the append-only log, ranges, accounts."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from api.ranges import RangeNotSatisfiable, parse_range
from archive.config import Settings
from archive.db import make_engine
from archive.errors import InvalidInput, ObjectMissing, SignatureInvalid
from archive.hashing import Digest, digest_file, parse_sha256
from archive.signing import Keyring, Signature, canonical_json
from archive.storage import MinioStore
from migrations import migrate
from tests.conftest import ROOT


def test_digest_streams_and_matches_hashlib() -> None:
    data = bytes(range(256)) * 10_000
    d = digest_file(io.BytesIO(data))
    import hashlib

    assert d == Digest(hashlib.sha256(data).hexdigest(), len(data))
    with pytest.raises(InvalidInput):
        Digest("XYZ", 1)
    assert parse_sha256(" " + "AB" * 32 + "\n") == "ab" * 32


def test_key_is_private_rotation_keeps_old_signatures_verifiable(tmp_path: Path) -> None:
    ring = Keyring(tmp_path / "keys")
    doc = {"b": 1.5, "a": "é", "list": [3, 2, 1]}
    first = ring.sign(doc)
    key_file = tmp_path / "keys" / f"{first.key_id}.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    second_id = ring.rotate()
    assert second_id != first.key_id and ring.current_key_id() == second_id
    ring.verify(doc, first)  # an old signature still verifies
    assert ring.sign(doc).key_id == second_id
    assert {k.key_id for k in ring.public_keys()} == {first.key_id, second_id}
    with pytest.raises(SignatureInvalid, match="altered"):
        ring.verify({**doc, "b": 1.6}, first)
    with pytest.raises(SignatureInvalid, match="unknown signing key"):
        ring.verify(doc, Signature("0" * 16, first.signature_b64))
    # RFC 8785: key order and spacing do not change the signed bytes.
    assert canonical_json({"b": 1, "a": 2}) == b'{"a":2,"b":1}'


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-3", 10, (0, 3)),
        ("bytes=5-", 10, (5, 9)),
        ("bytes=-4", 10, (6, 9)),
        ("bytes=8-100", 10, (8, 9)),
        ("bytes=0-1,4-5", 10, None),
        ("items=0-1", 10, None),
    ],
)
def test_ranges(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=5-2", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 10)


def _try(engine: Engine, sql: str) -> str | None:
    try:
        with engine.begin() as c:
            c.execute(sa.text(sql))
    except sa.exc.DBAPIError as exc:
        return str(exc.orig)
    return None


INSERT = (
    "INSERT INTO events (at, actor, action, subject_type, subject_id, client_addr, outcome, details) "
    "VALUES (CURRENT_TIMESTAMP, 'user:x', 'test', 'media', '1', '', 'ok', '{}')"
)


def test_custody_log_is_append_only_on_postgresql(engine: Engine) -> None:
    assert _try(engine, INSERT) is None
    for sql in ("UPDATE events SET actor = 'user:mallory'", "DELETE FROM events", "TRUNCATE events"):
        err = _try(engine, sql)
        assert err is not None and "append-only" in err, sql
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT actor FROM events")).scalar_one() == "user:x"


def test_embedded_sqlite_migrates_twice_and_log_is_append_only(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    migrate(s)
    migrate(s)  # idempotent
    e = make_engine(s.resolved_database_url())
    assert _try(e, INSERT) is None
    for sql in ("UPDATE events SET actor = 'user:mallory'", "DELETE FROM events"):
        err = _try(e, sql)
        assert err is not None and "append-only" in err
    e.dispose()


def test_users_add_prints_token_alone_on_last_line(env: dict[str, Any], make_user: Any) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "users", "add", "0815", "--role", "officer"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    token = out.stdout.strip().splitlines()[-1]
    assert token.startswith("cus_") and " " not in token and len(token) > 40
    dup = subprocess.run(
        [sys.executable, "-m", "cli.main", "users", "add", "0815", "--role", "officer"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert dup.returncode != 0 and "already exists" in dup.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "cli.main", "users", "add", "../x", "--role", "officer"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert bad.returncode != 0 and "user name" in bad.stderr


def test_multipart_parts_through_presigned_puts_assemble_and_a_dead_upload_is_named(
    store: MinioStore,
) -> None:
    """Parts written through the presigned path assemble into the exact object; a part sent to an
    aborted multipart upload is refused as missing, not stored somewhere."""
    key = "multipart-check"
    part = 5 * 1024 * 1024
    blobs = [os.urandom(part), os.urandom(part), os.urandom(1234)]
    upload_id = store.start_multipart(store.originals, key, "application/octet-stream")
    etags = [store.upload_part(store.originals, key, upload_id, i + 1, b) for i, b in enumerate(blobs)]
    assert all(etags)
    store.complete_multipart(store.originals, key, upload_id, list(zip(range(1, 4), etags, strict=True)))
    assert store.read_bytes(store.originals, key) == b"".join(blobs)

    dead = store.start_multipart(store.originals, "aborted", "application/octet-stream")
    store.abort_multipart(store.originals, "aborted", dead)
    with pytest.raises(ObjectMissing):
        store.upload_part(store.originals, "aborted", dead, 1, b"x" * 100)
    assert not store.exists(store.originals, "aborted")

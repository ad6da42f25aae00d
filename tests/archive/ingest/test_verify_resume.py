"""The verification read (real RGW): resumes from its saved hash state after a crash, reading only
what is left; a replaced object is read again in full; the object's ETag names its parts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from archive.accounts.models import Device, Officer
from archive.db import session_scope
from archive.ingest import sha256state
from archive.ingest.models import VerifyCheckpoint
from archive.ingest.verify import digest_stored, forget, multipart_etag
from archive.media.models import Media
from archive.storage import MinioStore
from tests.conftest import PART

MiB = 1024 * 1024


class Crash(Exception):
    pass


class Reading:
    """The real store, counting the bytes read (and, if asked, dying after ``crash_after``)."""

    def __init__(self, store: MinioStore, crash_after: int | None = None) -> None:
        self.store = store
        self.crash_after = crash_after
        self.read = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    @contextmanager
    def open_stream(self, bucket: str, key: str, offset: int = 0, length: int | None = None) -> Iterator[Any]:
        def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
            for c in chunks:
                if self.crash_after is not None and self.read + len(c) > self.crash_after:
                    raise Crash("worker killed")
                self.read += len(c)
                yield c

        with self.store.open_stream(bucket, key, offset, length) as chunks:
            yield counted(chunks)


def _multipart(store: MinioStore, key: str, data: bytes) -> list[dict[str, Any]]:
    mp = store.start_multipart(store.originals, key, "video/mp4")
    parts: list[dict[str, Any]] = []
    for i in range(0, len(data), PART):
        n = i // PART + 1
        etag = store.upload_part(store.originals, key, mp, n, data[i : i + PART])
        parts.append({"n": n, "etag": etag, "size": len(data[i : i + PART])})
    store.complete_multipart(store.originals, key, mp, [(int(p["n"]), str(p["etag"])) for p in parts])
    return parts


def _media(engine: Engine, key: str, data: bytes) -> str:
    with session_scope(engine) as s:
        s.add(Officer(badge="0815"))
        s.flush()
        s.add(Device(serial="BC-1", officer_badge="0815"))
        s.flush()
        m = Media(
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            content_type="video/mp4",
            file_name="a.mp4",
            officer_badge="0815",
            device_serial="BC-1",
            object_key=key,
        )
        s.add(m)
        s.flush()
        return m.id


@pytest.mark.skipif(not sha256state.available(), reason="libcrypto without SHA256_* functions")
def test_verification_resumes_from_its_checkpoint_and_not_across_a_replaced_object(
    engine: Engine, store: MinioStore
) -> None:
    data = hashlib.shake_256(b"evidence").digest(8 * PART + 12345)
    key = "originals/resume"
    parts = _multipart(store, key, data)
    assert store.stat(store.originals, key).etag == multipart_etag(parts)  # the parts check works on RGW
    media_id = _media(engine, key, data)
    every = 2 * PART

    crashing = Reading(store, crash_after=5 * PART + 7)
    with pytest.raises(Crash):
        digest_stored(engine, crashing, media_id, store.originals, key, checkpoint_bytes=every)
    with Session(engine) as s:
        ckpt = s.get(VerifyCheckpoint, media_id)
        assert ckpt is not None and ckpt.offset == 4 * PART  # the last checkpoint before the crash

    counting = Reading(store)
    got = digest_stored(engine, counting, media_id, store.originals, key, checkpoint_bytes=every)
    assert got.digest.hex == hashlib.sha256(data).hexdigest() and got.digest.size == len(data)
    assert got.resumed_from == 4 * PART
    assert counting.read == got.read == len(data) - 4 * PART  # only the rest was read again

    # A checkpoint of an object that was then replaced is not used.
    with session_scope(engine) as s:
        forget(s, media_id)  # as the verify step does when it records its result
    crashing = Reading(store, crash_after=3 * PART)
    with pytest.raises(Crash):
        digest_stored(engine, crashing, media_id, store.originals, key, checkpoint_bytes=every)
    with Session(engine) as s:
        ckpt = s.get(VerifyCheckpoint, media_id)
        assert ckpt is not None and ckpt.offset == 2 * PART
    other = hashlib.shake_256(b"other").digest(len(data))
    _multipart(store, key, other)
    counting = Reading(store)
    got = digest_stored(engine, counting, media_id, store.originals, key, checkpoint_bytes=every)
    assert got.resumed_from == 0 and counting.read == len(other)
    assert got.digest.hex == hashlib.sha256(other).hexdigest()


def test_resumable_sha256_state_round_trips() -> None:
    if not sha256state.available():
        pytest.skip("libcrypto without SHA256_* functions")
    data = hashlib.shake_256(b"x").digest(3 * MiB + 17)
    h = sha256state.ResumableSha256()
    h.update(data[: MiB + 5])
    again = sha256state.ResumableSha256(h.state(), h.size)
    again.update(memoryview(bytearray(data))[MiB + 5 :])
    assert again.hexdigest() == hashlib.sha256(data).hexdigest()
    with pytest.raises(ValueError):
        sha256state.ResumableSha256(h.state(), h.size + 1)  # the state says how much it covers

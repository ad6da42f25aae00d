"""The verification read: SHA-256 of what S3 stored, resumable, with the read ahead of the hash.

The archive's rule stands: the digest that counts is computed by re-reading the stored object.
S3 serves no byte of a multipart upload before it is completed, so the re-read starts when the
upload completes; it then runs at the speed of the slower of S3 and SHA-256 (a reader thread keeps
up to ``READ_AHEAD`` bytes in flight while the caller hashes), and saves its hash state every
``checkpoint_bytes`` (:mod:`archive.ingest.sha256state`), so a worker killed half way through a
large original resumes from the last checkpoint instead of from byte 0. A checkpoint is tied to
the object's ETag: a replaced object is read again in full.

The object is also checked against the parts the archive acknowledged (``Upload.parts``): its
multipart ETag must be the one those parts make (MD5 of their MD5s). A part replaced after it was
acknowledged shows up as a different ETag; the full re-read and the SHA-256 comparison decide.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete

from archive.clock import Clock, utcnow
from archive.db import session_scope
from archive.errors import StorageError
from archive.hashing import Digest
from archive.ingest import sha256state
from archive.ingest.models import VerifyCheckpoint
from archive.storage import ObjectStore

log = logging.getLogger("custody.ingest.verify")
RANGE = 1024 * 1024  # chunks handed from the reader to the hash
READ_AHEAD = 16  # chunks


@dataclass(frozen=True)
class StoredDigest:
    digest: Digest
    etag: str
    resumed_from: int  # bytes covered by the checkpoint this run started from
    read: int  # bytes read from S3 by this run
    teed: bool = False  # every byte of the object went to ``tee`` as well, in order


def multipart_etag(parts: list[dict[str, Any]]) -> str:
    """The ETag S3 gives an object completed from these parts: MD5 of the parts' binary MD5s, '-N'."""
    ordered = sorted(parts, key=lambda p: int(p["n"]))
    md5s = b"".join(bytes.fromhex(str(p["etag"]).strip('"')) for p in ordered)
    return f"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(parts)}"


def _read_ahead(store: ObjectStore, bucket: str, key: str, start: int, length: int) -> Iterator[bytes]:
    """Chunks of [start, start+length), fetched by a thread up to READ_AHEAD chunks ahead."""
    q: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=READ_AHEAD)
    stop = threading.Event()

    def put(item: bytes | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            with store.open_stream(bucket, key, start, length) as chunks:
                for chunk in chunks:
                    if not put(chunk):
                        return
            put(None)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consuming thread
            put(exc)

    t = threading.Thread(target=reader, daemon=True, name="verify-read")
    t.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=30)


def _load(engine: Engine, media_id: str) -> VerifyCheckpoint | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.get(VerifyCheckpoint, media_id)


def _save(engine: Engine, media_id: str, etag: str, h: sha256state.ResumableSha256, clock: Clock) -> None:
    with session_scope(engine) as session:
        row = session.get(VerifyCheckpoint, media_id) or VerifyCheckpoint(
            media_id=media_id, object_etag=etag, offset=0, state=""
        )
        row.object_etag = etag
        row.offset = h.size
        row.state = base64.b64encode(h.state()).decode()
        row.updated_at = clock()
        session.add(row)


def forget(session: Session, media_id: str) -> None:
    """Drop the checkpoint (in the transaction that records the verification's result)."""
    session.exec(delete(VerifyCheckpoint).where(col(VerifyCheckpoint.media_id) == media_id))


def digest_stored(
    engine: Engine,
    store: ObjectStore,
    media_id: str,
    bucket: str,
    key: str,
    *,
    checkpoint_bytes: int,
    clock: Clock = utcnow,
    tee: Callable[[bytes], None] | None = None,
) -> StoredDigest:
    """SHA-256 of the stored object ``bucket/key``, resuming from this item's checkpoint if the
    object is unchanged since it was taken. Raises ObjectMissing if there is no object.

    ``tee``: when the read starts at byte 0 (no checkpoint to resume from), every chunk hashed is
    handed to it too, in order (``teed`` in the result): one read of the object serves the hash and
    another consumer (ffmpeg's damage check, :class:`archive.media.ffmpeg.PipedCheck`); the result's
    ``etag`` says which object that was."""
    info = store.stat(bucket, key)
    resumable = sha256state.available()
    h: Any
    start = 0
    ckpt = _load(engine, media_id) if resumable else None
    if ckpt is not None and ckpt.object_etag == info.etag and 0 < ckpt.offset <= info.size:
        try:
            h = sha256state.ResumableSha256(base64.b64decode(ckpt.state), ckpt.offset)
            start = ckpt.offset
        except ValueError:
            log.warning("verify %s: unusable checkpoint; reading from the start", media_id)
            h = sha256state.ResumableSha256()
    else:
        h = sha256state.ResumableSha256() if resumable else hashlib.sha256()
    pos, saved = start, start
    if start != 0:
        tee = None  # a resumed read cannot hand on the bytes before its checkpoint
    for chunk in _read_ahead(store, bucket, key, start, info.size - start):
        h.update(chunk)
        if tee is not None:
            tee(chunk)
        pos += len(chunk)
        if resumable and pos - saved >= checkpoint_bytes and pos < info.size:
            _save(engine, media_id, info.etag, h, clock)
            saved = pos
    if pos != info.size:
        raise StorageError(f"read {pos} bytes of {bucket}/{key}, which has {info.size}")
    if store.stat(bucket, key).etag != info.etag:
        raise StorageError(f"{bucket}/{key} changed while it was being verified")
    return StoredDigest(Digest(h.hexdigest(), pos), info.etag, start, pos - start, teed=tee is not None)

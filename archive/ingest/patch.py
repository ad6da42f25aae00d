"""A tus PATCH, received: the upload algorithm the API's router hands its request body to.

One PATCH at a time per upload (:mod:`archive.ingest.lock`, renewed for the PATCH's whole life,
including while it waits on S3). Bytes are cut into S3 parts; while a part goes to S3 the next one
keeps arriving (``upload_parts_in_flight``), and each part is recorded in the database the moment
S3 has it, in order, so even an API crash keeps it. Memory per PATCH is about (2 + parts in
flight) x the part size: a part being joined and its chunks briefly coexist.

This function owns its unit of work: it commits after each durable part (that is the point of
recording them) and once at completion, when the last bytes and the media row commit together and
the verify task is sent after that commit. A deferred digest (``sha256=deferred`` in the metadata)
must arrive on the final PATCH as ``Custody-Sha256``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
from sqlmodel import Session

from archive.accounts.models import User
from archive.context import Dispatcher
from archive.db import after_commit
from archive.errors import Conflict, InvalidInput
from archive.hashing import parse_sha256
from archive.i18n import _
from archive.ingest import uploads
from archive.ingest.errors import BodyCut, ChecksumMismatch, Locked, UnsupportedMedia
from archive.ingest.lock import Held, LockLost, UploadLocks
from archive.ingest.models import Upload, UploadState
from archive.ingest.pipeline import Step
from archive.ingest.tus import Checksum, check_version, int_header, parse_checksum
from archive.media.models import Media
from archive.storage import ObjectStore

log = logging.getLogger("custody.api.uploads")
T = TypeVar("T")


async def _thread(fn: Callable[..., T], *args: Any) -> T:
    """Blocking work (database, S3) on the worker-thread pool, as the web framework does it."""
    return await anyio.to_thread.run_sync(fn, *args)


@dataclass(frozen=True)
class PatchRequest:
    """What a PATCH's headers say, checked before a byte of its body is read."""

    upload_id: str
    offset: int
    content_length: int | None
    checksum: Checksum | None
    declared: str | None  # Custody-Sha256: the digest of a deferred-digest upload


def patch_request(upload_id: str, headers: Mapping[str, str]) -> PatchRequest:
    """``headers`` as the web layer has them (case-insensitive, lowercase keys work)."""
    check_version(headers.get("tus-resumable"))
    if headers.get("content-type", "").split(";")[0].strip() != "application/offset+octet-stream":
        raise UnsupportedMedia(_("Content-Type must be application/offset+octet-stream"))
    offset = int_header("Upload-Offset", headers.get("upload-offset"))
    checksum = parse_checksum(headers.get("upload-checksum"))
    declared = headers.get("custody-sha256")
    if declared is not None:
        # Checked before any byte is read: a bad digest must not strand a finished upload.
        declared = parse_sha256(declared)
    length = headers.get("content-length")
    return PatchRequest(
        upload_id,
        offset,
        int(length) if length is not None and length.isdigit() else None,
        checksum,
        declared,
    )


async def receive_patch(
    session: Session,
    store: ObjectStore,
    dispatcher: Dispatcher,
    locks: UploadLocks,
    user: User,
    req: PatchRequest,
    body: AsyncIterator[bytes],
    *,
    parts_in_flight: int,
    client_addr: str = "",
) -> Upload:
    """Receive one PATCH body into the upload; the upload afterwards (its offset, its media id once
    complete). ``body`` raises :class:`BodyCut` if the client goes away mid-body."""
    ttl = locks.ttl_s
    held = await _thread(locks.acquire, req.upload_id)
    if held is None:
        raise Locked(
            _(
                "another request is writing to this upload, or one was cut off less than "
                "{ttl} s ago; retry after a few seconds"
            ).format(ttl=ttl)
        )
    renewer = asyncio.create_task(_keep_locked(held, ttl, req.upload_id))
    try:
        return await _receive_locked(
            session, store, dispatcher, user, req, body, parts_in_flight, client_addr
        )
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        try:
            await _thread(held.release)
        except LockLost:
            log.warning("upload lock for %s expired before release", req.upload_id)


async def _keep_locked(held: Held, ttl: int, upload_id: str) -> None:
    """Renew the upload's lock for as long as its PATCH runs: while bytes arrive, and equally while
    it waits on S3 for parts or for the final write. Reset (not add to) its lifetime, so a crashed
    API never holds it longer than one TTL."""
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            await _thread(held.extend)
        except LockLost:
            log.error("upload lock for %s was lost while its PATCH ran", upload_id)
            return


async def _receive_locked(
    session: Session,
    store: ObjectStore,
    dispatcher: Dispatcher,
    user: User,
    req: PatchRequest,
    body: AsyncIterator[bytes],
    in_flight: int,
    addr: str,
) -> Upload:
    offset, checksum, declared = req.offset, req.checksum, req.declared
    upload: Upload = await _thread(uploads.get_upload_for, session, req.upload_id, user)
    await _thread(session.refresh, upload)
    if upload.state is UploadState.COMPLETE:
        if offset == upload.length:
            return upload
        raise Conflict(_("upload is complete; Upload-Offset is {length}").format(length=upload.length))
    if offset != upload.offset:
        raise Conflict(
            _("Upload-Offset {offset} does not match the server's offset {offset2}").format(
                offset=offset, offset2=upload.offset
            )
        )
    content_length = req.content_length
    if content_length is not None and offset + content_length > upload.length:
        raise InvalidInput(
            _("PATCH carries more bytes than Upload-Length {length} allows").format(length=upload.length)
        )
    meta_sha = upload.metadata_.get("sha256", "").strip().lower()
    will_finish = content_length is not None and offset + content_length == upload.length
    if will_finish and meta_sha == uploads.DEFERRED and not declared:
        raise InvalidInput(_("this upload deferred its SHA-256: the final PATCH must carry Custody-Sha256"))

    writer = uploads.PartWriter(store, upload)
    await _thread(writer.load_tail)
    hasher = checksum.hasher if checksum else None
    disconnected = False
    # Parts on their way to S3 while the next one arrives: (number, size, write task), oldest
    # first. A confirmer beside the receive loop records each part as soon as S3 has it, in order.
    pending: collections.deque[tuple[int, int, asyncio.Task[str]]] = collections.deque()
    changed = asyncio.Condition()
    receiving = True

    def save(durable_parts_only: bool = False) -> None:
        if durable_parts_only:
            writer.save_durable_parts(upload)
        else:
            writer.save_progress(upload)
        session.add(upload)
        session.commit()

    async def notify() -> None:
        async with changed:
            changed.notify_all()

    async def confirm_in_order() -> None:
        try:
            while True:
                async with changed:
                    await changed.wait_for(lambda: bool(pending) or not receiving)
                if not pending:
                    return
                number, size, task = pending[0]
                etag = await task  # a failed write ends the confirmer; the PATCH fails below
                pending.popleft()
                writer.part_written(number, size, etag)
                if hasher is None:
                    # Whole parts are safe in S3: record them, so even an API crash keeps them.
                    await _thread(save, True)
                await notify()
        finally:
            await notify()

    confirmer = asyncio.create_task(confirm_in_order())
    write_error: Exception | None = None
    try:
        try:
            async for chunk in body:
                if not chunk:
                    continue
                writer.add(chunk)
                if hasher is not None:
                    hasher.update(chunk)
                while writer.has_full_part:
                    async with changed:
                        await changed.wait_for(lambda: len(pending) < in_flight or confirmer.done())
                    if confirmer.done():
                        break  # a part failed to reach S3: stop taking bytes
                    number, data = writer.take_part()
                    task = asyncio.create_task(_thread(writer.write_part, number, data))
                    pending.append((number, len(data), task))
                    del data
                    await notify()
                if confirmer.done():
                    break
        except BodyCut:
            disconnected = True
    finally:
        receiving = False
        await notify()
        try:
            await confirmer
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the cleanup
            write_error = exc
        # After a failed write: wait for the writes still running (the upload's lock must cover
        # them), then forget them; the next PATCH resumes from the durable parts.
        while pending:
            _part, size, task = pending.popleft()
            with contextlib.suppress(BaseException):
                await task
            writer.part_abandoned(size)
    if write_error is not None:
        raise write_error
    if checksum is not None:
        if disconnected:
            # The checksum covers the whole PATCH: a partial body is discarded, as tus requires.
            raise InvalidInput(_("connection closed before the checksummed PATCH body was complete"))
        if hasher is not None and hasher.digest() != checksum.expected:
            raise ChecksumMismatch(
                _("Upload-Checksum {algorithm} does not match the bytes received").format(
                    algorithm=checksum.algorithm
                )
            )
    if writer.offset == upload.length and meta_sha == uploads.DEFERRED and not declared:
        raise InvalidInput(_("this upload deferred its SHA-256: the final PATCH must carry Custody-Sha256"))
    done = await _thread(writer.finish)
    if not done:
        await _thread(save)
        return upload

    def complete() -> Media:
        # The last bytes and the media row commit together: there is no moment at which the
        # upload looks finished (offset == length) but nothing will ever verify it. If this
        # commit is lost, the client re-sends the final PATCH and completion runs again.
        writer.save_progress(upload)
        media = uploads.complete_upload(session, upload, user, addr, declared)
        # Sent only after the commit: the worker must find the row it is told about.
        after_commit(session, lambda: dispatcher.send(Step.VERIFY, media.id, media.sha256))
        session.commit()
        return media

    await _thread(complete)
    # A tail object may remain from an earlier PATCH; S3 answers a delete of a missing key with success.
    await _thread(store.delete, store.originals, uploads.tail_key(upload))
    return upload

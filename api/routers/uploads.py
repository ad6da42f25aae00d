"""tus 1.0 resumable uploads at /api/v1/uploads: core, creation, termination, checksum.

Any tus client works. Progress is saved after every S3 part, so a dropped connection or an API
restart loses at most the bytes the server never acknowledged (with Upload-Checksum, the whole
PATCH is all-or-nothing, as the checksum extension requires).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import functools
import logging
import time
from typing import Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from redis.exceptions import LockError
from sqlmodel import Session
from starlette.requests import ClientDisconnect

from api.deps import ClientAddr, CurrentUser, DispatcherDep, SessionDep, StoreDep
from archive import uploads
from archive.config import get_settings
from archive.context import Dispatcher
from archive.db import after_commit
from archive.errors import Conflict, CustodyError, InvalidInput
from archive.hashing import parse_sha256
from archive.ingest.models import Upload, UploadState
from archive.media.models import Media
from archive.pipeline import Step

log = logging.getLogger("custody.api.uploads")
# The app caps request bodies at JSON size (api.app.MAX_JSON_BODY); tus PATCH bodies are bounded by
# the upload's own Upload-Length, which the handler enforces byte by byte.
router = APIRouter(prefix="/api/v1/uploads", tags=["uploads"], max_body_size=2**50)
TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination,checksum"


class ChecksumMismatch(CustodyError):
    http_status = 460


class Locked(CustodyError):
    http_status = 423


class PreconditionFailed(CustodyError):
    http_status = 412


class UnsupportedMedia(CustodyError):
    http_status = 415


def _check_version(value: str | None) -> None:
    if value != TUS_VERSION:
        raise PreconditionFailed(f"Tus-Resumable must be {TUS_VERSION}")


def _int_header(name: str, value: str | None) -> int:
    if value is None or not value.isdigit():
        raise InvalidInput(f"{name} must be a non-negative integer")
    return int(value)


@router.options("", status_code=204)
def options() -> Response:
    s = get_settings()
    return Response(
        status_code=204,
        headers={
            "Tus-Resumable": TUS_VERSION,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(s.max_upload_bytes),
            "Tus-Checksum-Algorithm": ",".join(uploads.CHECKSUM_ALGORITHMS),
        },
    )


@router.post("", status_code=201)
def create(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    store: StoreDep,
    addr: ClientAddr,
    tus_resumable: str | None = Header(None),
    upload_length: str | None = Header(None),
    upload_metadata: str | None = Header(None),
) -> Response:
    _check_version(tus_resumable)
    if request.headers.get("upload-defer-length"):
        raise InvalidInput("Upload-Defer-Length is not supported: send Upload-Length")
    s = get_settings()
    meta = uploads.parse_metadata(upload_metadata, s.max_metadata_bytes)
    upload = uploads.create_upload(
        session,
        user=user,
        length=_int_header("Upload-Length", upload_length),
        meta=meta,
        part_size=s.upload_part_bytes,
        max_bytes=s.max_upload_bytes,
        client_addr=addr,
        store=store,
    )
    return Response(
        status_code=201,
        headers={
            "Location": f"/api/v1/uploads/{upload.id}",
            "Tus-Resumable": TUS_VERSION,
            "Upload-Offset": "0",
        },
    )


def _lock_key(upload_id: str) -> str:
    return f"custody:upload-lock:{upload_id}"


# How long HEAD waits for a PATCH that is still writing (e.g. the last parts of a PATCH whose
# client has just dropped), so that the offset it reports has settled.
HEAD_SETTLE_S = 5.0


@router.head("/{upload_id}")
async def head(upload_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    upload = await run_in_threadpool(uploads.get_upload_for, session, upload_id, user)
    redis = request.app.state.redis
    if await run_in_threadpool(redis.exists, _lock_key(upload_id)):
        # Wait without holding a database connection or a thread, then read the settled row.
        await run_in_threadpool(session.close)
        deadline = time.monotonic() + HEAD_SETTLE_S
        while time.monotonic() < deadline and await run_in_threadpool(redis.exists, _lock_key(upload_id)):
            await asyncio.sleep(0.05)
        upload = await run_in_threadpool(uploads.get_upload_for, session, upload_id, user)
    headers = {
        "Tus-Resumable": TUS_VERSION,
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.length),
        "Upload-Metadata": uploads.encode_metadata(upload.metadata_),
        "Cache-Control": "no-store",
    }
    if upload.media_id:
        headers["Custody-Media-Id"] = upload.media_id
    return Response(status_code=200, headers=headers)


class UploadStatus(BaseModel):
    id: str
    state: UploadState
    offset: int
    length: int
    media_id: str | None
    media_state: str | None
    media_reason: str | None
    duplicate_of: str | None


@router.get("/{upload_id}", response_model=UploadStatus)
def status(upload_id: str, session: SessionDep, user: CurrentUser) -> UploadStatus:
    """Not part of tus: where the upload's media item is in the pipeline (the dock polls this)."""
    upload = uploads.get_upload_for(session, upload_id, user)
    media = session.get(Media, upload.media_id) if upload.media_id else None
    return UploadStatus(
        id=upload.id,
        state=upload.state,
        offset=upload.offset,
        length=upload.length,
        media_id=upload.media_id,
        media_state=media.state if media else None,
        media_reason=media.state_reason if media else None,
        duplicate_of=media.duplicate_of if media else None,
    )


@router.delete("/{upload_id}", status_code=204)
def terminate(
    upload_id: str, session: SessionDep, user: CurrentUser, store: StoreDep, addr: ClientAddr
) -> Response:
    upload = uploads.get_upload_for(session, upload_id, user)
    uploads.terminate_upload(session, store, upload, user, addr)
    return Response(status_code=204, headers={"Tus-Resumable": TUS_VERSION})


def _checksum(header: str | None) -> tuple[str, bytes, Any] | None:
    if not header:
        return None
    algo, _, b64 = header.partition(" ")
    factory = uploads.CHECKSUM_ALGORITHMS.get(algo.lower())
    if factory is None:
        raise InvalidInput(f"Upload-Checksum algorithm {algo!r} is not supported")
    try:
        expected = base64.b64decode(b64, validate=True)
    except binascii.Error as exc:
        raise InvalidInput("Upload-Checksum value is not base64") from exc
    return algo, expected, factory()


@router.patch("/{upload_id}", status_code=204)
async def patch(
    upload_id: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    store: StoreDep,
    addr: ClientAddr,
    dispatcher: DispatcherDep,
) -> Response:
    h = request.headers
    _check_version(h.get("tus-resumable"))
    if h.get("content-type", "").split(";")[0].strip() != "application/offset+octet-stream":
        raise UnsupportedMedia("Content-Type must be application/offset+octet-stream")
    offset = _int_header("Upload-Offset", h.get("upload-offset"))
    checksum = _checksum(h.get("upload-checksum"))
    declared = h.get("custody-sha256")
    if declared is not None:
        # Checked before any byte is read: a bad digest must not strand a finished upload.
        declared = parse_sha256(declared)

    ttl = get_settings().upload_lock_ttl_s
    lock = request.app.state.redis.lock(
        # Not thread-local: acquire, extend and release run on whichever threadpool thread is free
        # (with thread_local the token is invisible from another thread and release fails, leaving
        # the upload locked until the TTL runs out).
        _lock_key(upload_id),
        timeout=ttl,
        blocking=False,
        thread_local=False,
    )
    if not await run_in_threadpool(lock.acquire):
        raise Locked(
            f"another request is writing to this upload, or one was cut off less than {ttl} s ago; "
            "retry after a few seconds"
        )
    renewer = asyncio.create_task(_keep_locked(lock, ttl, upload_id))
    try:
        return await _patch_locked(
            upload_id, request, session, user, store, addr, offset, checksum, declared, dispatcher
        )
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        try:
            await run_in_threadpool(lock.release)
        except LockError:
            log.warning("upload lock for %s expired before release", upload_id)


async def _keep_locked(lock: Any, ttl: int, upload_id: str) -> None:
    """Renew the upload's lock for as long as its PATCH runs: while bytes arrive, and equally while
    it waits on S3 for parts or for the final write. Reset (not add to) its lifetime, so a crashed
    API never holds it longer than one TTL."""
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            await run_in_threadpool(functools.partial(lock.extend, ttl, replace_ttl=True))
        except LockError:
            log.error("upload lock for %s was lost while its PATCH ran", upload_id)
            return


async def _patch_locked(
    upload_id: str,
    request: Request,
    session: Session,
    user: Any,
    store: Any,
    addr: str,
    offset: int,
    checksum: tuple[str, bytes, Any] | None,
    declared: str | None,
    dispatcher: Dispatcher,
) -> Response:
    upload: Upload = await run_in_threadpool(uploads.get_upload_for, session, upload_id, user)
    await run_in_threadpool(session.refresh, upload)
    if upload.state is UploadState.COMPLETE:
        if offset == upload.length:
            return _patched(upload)
        raise Conflict(f"upload is complete; Upload-Offset is {upload.length}")
    if offset != upload.offset:
        raise Conflict(f"Upload-Offset {offset} does not match the server's offset {upload.offset}")
    content_length = request.headers.get("content-length")
    if (
        content_length is not None
        and content_length.isdigit()
        and offset + int(content_length) > upload.length
    ):
        raise InvalidInput(f"PATCH carries more bytes than Upload-Length {upload.length} allows")
    meta_sha = upload.metadata_.get("sha256", "").strip().lower()
    will_finish = (
        content_length is not None
        and content_length.isdigit()
        and offset + int(content_length) == upload.length
    )
    if will_finish and meta_sha == uploads.DEFERRED and not declared:
        raise InvalidInput("this upload deferred its SHA-256: the final PATCH must carry Custody-Sha256")

    writer = uploads.PartWriter(store, upload)
    await run_in_threadpool(writer.load_tail)
    settings = get_settings()
    hasher = checksum[2] if checksum else None
    disconnected = False
    # Parts on their way to S3 while the next one arrives: (number, size, write task), oldest
    # first. A confirmer beside the receive loop records each part as soon as S3 has it, in order.
    pending: collections.deque[tuple[int, int, asyncio.Task[str]]] = collections.deque()
    changed = asyncio.Condition()
    receiving = True
    in_flight = settings.upload_parts_in_flight

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
                    await run_in_threadpool(save, True)
                await notify()
        finally:
            await notify()

    confirmer = asyncio.create_task(confirm_in_order())
    write_error: Exception | None = None
    try:
        try:
            async for chunk in request.stream():
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
                    task = asyncio.create_task(run_in_threadpool(writer.write_part, number, data))
                    pending.append((number, len(data), task))
                    del data
                    await notify()
                if confirmer.done():
                    break
        except ClientDisconnect:
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
            _, size, task = pending.popleft()
            with contextlib.suppress(BaseException):
                await task
            writer.part_abandoned(size)
    if write_error is not None:
        raise write_error
    if checksum is not None:
        if disconnected:
            # The checksum covers the whole PATCH: a partial body is discarded, as tus requires.
            raise InvalidInput("connection closed before the checksummed PATCH body was complete")
        if hasher is not None and hasher.digest() != checksum[1]:
            raise ChecksumMismatch(f"Upload-Checksum {checksum[0]} does not match the bytes received")
    if writer.offset == upload.length and meta_sha == uploads.DEFERRED and not declared:
        raise InvalidInput("this upload deferred its SHA-256: the final PATCH must carry Custody-Sha256")
    done = await run_in_threadpool(writer.finish)
    if not done:
        await run_in_threadpool(save)
        return _patched(upload)

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

    await run_in_threadpool(complete)
    # A tail object may remain from an earlier PATCH; S3 answers a delete of a missing key with success.
    await run_in_threadpool(store.delete, store.originals, uploads.tail_key(upload))
    return _patched(upload)


def _patched(upload: Upload) -> Response:
    headers = {"Tus-Resumable": TUS_VERSION, "Upload-Offset": str(upload.offset)}
    if upload.media_id:
        headers["Custody-Media-Id"] = upload.media_id
    return Response(status_code=204, headers=headers)

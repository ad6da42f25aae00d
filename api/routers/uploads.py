"""tus 1.0 resumable uploads at /api/v1/uploads: core, creation, termination, checksum.

Any tus client works. Progress is saved after every S3 part, so a dropped connection or an API
restart loses at most the bytes the server never acknowledged (with Upload-Checksum, the whole
PATCH is all-or-nothing, as the checksum extension requires).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from api.deps import ClientAddr, CurrentUser, DispatcherDep, SessionDep, StoreDep
from archive.config import get_settings
from archive.errors import InvalidInput
from archive.i18n import _
from archive.ingest import tus, uploads
from archive.ingest.errors import BodyCut
from archive.ingest.lock import RedisUploadLocks, UploadLocks
from archive.ingest.models import Upload, UploadStatusPublic
from archive.ingest.patch import patch_request, receive_patch

# The app caps request bodies at JSON size (api.app.MAX_JSON_BODY); tus PATCH bodies are bounded by
# the upload's own Upload-Length, which the handler enforces byte by byte.
router = APIRouter(prefix="/api/v1/uploads", tags=["uploads"], max_body_size=2**50)
TUS_VERSION = tus.TUS_VERSION


@router.options("", status_code=204)
def options() -> Response:
    s = get_settings()
    return Response(
        status_code=204,
        headers={
            "Tus-Resumable": TUS_VERSION,
            "Tus-Version": tus.TUS_VERSION,
            "Tus-Extension": tus.EXTENSIONS,
            "Tus-Max-Size": str(s.max_upload_bytes),
            "Tus-Checksum-Algorithm": ",".join(tus.CHECKSUM_ALGORITHMS),
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
    tus.check_version(tus_resumable)
    if request.headers.get("upload-defer-length"):
        raise InvalidInput(_("Upload-Defer-Length is not supported: send Upload-Length"))
    s = get_settings()
    meta = tus.parse_metadata(upload_metadata, s.max_metadata_bytes)
    upload = uploads.create_upload(
        session,
        user=user,
        length=tus.int_header("Upload-Length", upload_length),
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


def _locks(request: Request) -> UploadLocks:
    return RedisUploadLocks(request.app.state.redis, get_settings().upload_lock_ttl_s)


# How long HEAD waits for a PATCH that is still writing (e.g. the last parts of a PATCH whose
# client has just dropped), so that the offset it reports has settled.
HEAD_SETTLE_S = 5.0


@router.head("/{upload_id}")
async def head(upload_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    upload = await run_in_threadpool(uploads.get_upload_for, session, upload_id, user)
    locks = _locks(request)
    if await run_in_threadpool(locks.held, upload_id):
        # Wait without holding a database connection or a thread, then read the settled row.
        await run_in_threadpool(session.close)
        deadline = time.monotonic() + HEAD_SETTLE_S
        while time.monotonic() < deadline and await run_in_threadpool(locks.held, upload_id):
            await asyncio.sleep(0.05)
        upload = await run_in_threadpool(uploads.get_upload_for, session, upload_id, user)
    headers = {
        "Tus-Resumable": TUS_VERSION,
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.length),
        "Upload-Metadata": tus.encode_metadata(upload.metadata_),
        "Cache-Control": "no-store",
    }
    if upload.media_id:
        headers["Custody-Media-Id"] = upload.media_id
    return Response(status_code=200, headers=headers)


@router.get("/{upload_id}", response_model=UploadStatusPublic)
def status(upload_id: str, session: SessionDep, user: CurrentUser) -> UploadStatusPublic:
    """Not part of tus: where the upload's media item is in the pipeline (the dock polls this)."""
    return uploads.upload_status(session, user, upload_id)


@router.delete("/{upload_id}", status_code=204)
def terminate(
    upload_id: str, session: SessionDep, user: CurrentUser, store: StoreDep, addr: ClientAddr
) -> Response:
    upload = uploads.get_upload_for(session, upload_id, user)
    uploads.terminate_upload(session, store, upload, user, addr)
    return Response(status_code=204, headers={"Tus-Resumable": TUS_VERSION})


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise BodyCut from None


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
    upload = await receive_patch(
        session,
        store,
        dispatcher,
        _locks(request),
        user,
        patch_request(upload_id, request.headers),
        _body(request),
        parts_in_flight=get_settings().upload_parts_in_flight,
        client_addr=addr,
    )
    return _patched(upload)


def _patched(upload: Upload) -> Response:
    headers = {"Tus-Resumable": TUS_VERSION, "Upload-Offset": str(upload.offset)}
    if upload.media_id:
        headers["Custody-Media-Id"] = upload.media_id
    return Response(status_code=204, headers=headers)

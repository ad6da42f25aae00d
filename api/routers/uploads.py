"""tus 1.0 resumable uploads at /api/v1/uploads: core, creation, termination, checksum.

Any tus client works. Progress is saved after every S3 part, so a dropped connection or an API
restart loses at most the bytes the server never acknowledged (with Upload-Checksum, the whole
PATCH is all-or-nothing, as the checksum extension requires).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from api.deps import ClientAddr, CurrentUser, DispatcherDep, SessionDep, StoreDep
from api.openapi import errors, header
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

# The tus headers, as the OpenAPI document states them (api/openapi.py fills in the error bodies).
_TUS_RESUMABLE = header("`1.0.0`", required=True)
_OFFSET = header("Bytes received so far", required=True, type_="integer")
_MEDIA_ID = header("The archived media item, once the last byte is in")


def _tus_header(
    name: str, description: str, *, required: bool = False, **schema: object
) -> dict[str, object]:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": {"type": "string", **schema},
    }


_TUS_VERSION_IN = _tus_header("Tus-Resumable", "The tus version: `1.0.0` (else 412)", required=True)


@router.options(
    "",
    status_code=204,
    response_class=Response,
    responses={
        204: {
            "description": "What this tus server supports",
            "headers": {
                "Tus-Resumable": _TUS_RESUMABLE,
                "Tus-Version": header("`1.0.0`", required=True),
                "Tus-Extension": header("`creation,termination,checksum`", required=True),
                "Tus-Max-Size": header("Largest upload, bytes", required=True, type_="integer"),
                "Tus-Checksum-Algorithm": header("`sha1,sha256,md5`", required=True),
            },
        }
    },
)
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


@router.post(
    "",
    status_code=201,
    response_class=Response,
    responses={
        201: {
            "description": "Created; send the bytes with PATCH to `Location`",
            "headers": {
                "Location": header("`/api/v1/uploads/{id}`", required=True),
                "Tus-Resumable": _TUS_RESUMABLE,
                "Upload-Offset": _OFFSET,
            },
        },
        **errors(412, 413),
    },
)
def create(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    store: StoreDep,
    addr: ClientAddr,
    tus_resumable: Annotated[str | None, Header(description="The tus version: `1.0.0` (else 412)")] = None,
    upload_length: Annotated[
        str | None, Header(description="The file's size in bytes, a decimal integer (required; else 400)")
    ] = None,
    upload_metadata: Annotated[
        str | None,
        Header(
            description="`key base64(value)` pairs, comma-separated: `filename`, `path`, `officer`, "
            "`device`, `sha256` (hex or `deferred`), `recorded_at`, `content_type`, `clock_offset_s`, "
            "`clock_source` (docs/api.md); at most 8 KiB (else 413)"
        ),
    ] = None,
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


@router.head(
    "/{upload_id}",
    response_class=Response,
    responses={
        200: {
            "description": "Where the upload stands (no body)",
            "headers": {
                "Tus-Resumable": _TUS_RESUMABLE,
                "Upload-Offset": _OFFSET,
                "Upload-Length": header("The file's size in bytes", required=True, type_="integer"),
                "Upload-Metadata": header("The metadata the upload was created with", required=True),
                "Custody-Media-Id": _MEDIA_ID,
            },
        },
        412: {"description": "Tus-Resumable is missing or not `1.0.0` (no body: HEAD)"},
    },
)
async def head(
    upload_id: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    tus_resumable: Annotated[str | None, Header(description="The tus version: `1.0.0` (else 412)")] = None,
) -> Response:
    tus.check_version(tus_resumable)
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


@router.delete(
    "/{upload_id}",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "Terminated", "headers": {"Tus-Resumable": _TUS_RESUMABLE}},
        **errors(412),
    },
)
def terminate(
    upload_id: str,
    session: SessionDep,
    user: CurrentUser,
    store: StoreDep,
    addr: ClientAddr,
    tus_resumable: Annotated[str | None, Header(description="The tus version: `1.0.0` (else 412)")] = None,
) -> Response:
    tus.check_version(tus_resumable)
    upload = uploads.get_upload_for(session, upload_id, user)
    uploads.terminate_upload(session, store, upload, user, addr)
    return Response(status_code=204, headers={"Tus-Resumable": TUS_VERSION})


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise BodyCut from None


@router.patch(
    "/{upload_id}",
    status_code=204,
    response_class=Response,
    responses={
        204: {
            "description": "The bytes are stored",
            "headers": {
                "Tus-Resumable": _TUS_RESUMABLE,
                "Upload-Offset": _OFFSET,
                "Custody-Media-Id": _MEDIA_ID,
            },
        },
        **errors(412, 415, 423, 460),
    },
    # The handler reads these headers and the body itself (archive.ingest.patch), as a stream.
    openapi_extra={
        "parameters": [
            _TUS_VERSION_IN,
            _tus_header(
                "Upload-Offset", "Where these bytes start (else 409)", required=True, pattern="^[0-9]+$"
            ),
            _tus_header(
                "Upload-Checksum", "`sha1|sha256|md5 base64(digest)` of this PATCH's body (else 460)"
            ),
            _tus_header(
                "Custody-Sha256",
                "The file's SHA-256 (hex), on the final PATCH when the metadata said `sha256 deferred`",
            ),
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
    },
)
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

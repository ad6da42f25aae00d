"""Case attachments taken in: a scan or PDF archived as an original, linked to its case at once.

The body is hashed while it is received into a temporary file (at most ``ATTACHMENT_MAX_BYTES``),
stored under ``originals/<upload id>`` like a docked recording, recorded by
:func:`archive.cases.services.add_attachment`, and sent through the same verify -> probe -> derive ->
sign pipeline once the request's unit of work commits. Who may attach, and a bad name or type, are
settled before a byte is read: nothing reaches the Object-Locked bucket that could not be archived.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.to_thread
from sqlmodel import Session

from archive.accounts.models import User
from archive.cases import services as cases
from archive.context import Dispatcher
from archive.db import after_commit
from archive.errors import InvalidInput, TooLarge
from archive.i18n import _
from archive.ingest import uploads
from archive.ingest.pipeline import Step
from archive.media.models import Media
from archive.models import new_id
from archive.storage import ObjectStore

ATTACHMENT_MAX_BYTES = 256 * 1024**2  # a scanned file; recordings go through the dock (tus)


def check_attachment(
    session: Session,
    user: User,
    case_id: str,
    *,
    filename: str,
    content_type: str,
    declared_sha256: str | None,
    content_length: int | None,
) -> None:
    """Everything that can refuse an attachment before its bytes are read."""
    if content_length is not None and content_length > ATTACHMENT_MAX_BYTES:
        raise TooLarge(
            _(
                "attachment of {content_length} bytes is over the limit of {attachment_max_bytes} bytes"
            ).format(content_length=content_length, attachment_max_bytes=ATTACHMENT_MAX_BYTES)
        )
    # 404 for a case you cannot see, 403 to read only.
    cases.require_writer(session, user, cases.get_case(session, user, case_id))
    cases.attachment_metadata(user, filename, content_type, (declared_sha256 or uploads.DEFERRED).lower())


async def receive_attachment(
    session: Session,
    store: ObjectStore,
    dispatcher: Dispatcher,
    user: User,
    case_id: str,
    body: AsyncIterator[bytes],
    *,
    filename: str,
    content_type: str,
    declared_sha256: str | None,
    content_length: int | None,
    part_size: int,
    client_addr: str = "",
) -> Media:
    """Archive ``body`` as an attachment of the case. The original is compared in verify with
    ``declared_sha256`` if given, else with the digest computed here while receiving."""
    await anyio.to_thread.run_sync(
        lambda: check_attachment(
            session,
            user,
            case_id,
            filename=filename,
            content_type=content_type,
            declared_sha256=declared_sha256,
            content_length=content_length,
        )
    )
    digest, size = hashlib.sha256(), 0
    with tempfile.NamedTemporaryFile(prefix="custody-attachment-") as tmp:
        async for chunk in body:
            size += len(chunk)  # the web layer stops the body at ATTACHMENT_MAX_BYTES
            digest.update(chunk)
            await anyio.to_thread.run_sync(tmp.write, chunk)
        if size == 0:
            raise InvalidInput(_("empty file: an attachment with no bytes cannot be archived"))
        await anyio.to_thread.run_sync(tmp.flush)
        upload_id = new_id()
        key = f"originals/{upload_id}"

        def store_and_record() -> Media:
            store.put_file(store.originals, key, Path(tmp.name), content_type)
            item = cases.add_attachment(
                session,
                user,
                case_id,
                upload_id=upload_id,
                object_key=key,
                filename=filename,
                content_type=content_type,
                size=size,
                sha256=(declared_sha256 or digest.hexdigest()).lower(),
                part_size=part_size,
                addr=client_addr,
            )
            # Sent only after the unit of work commits: the worker must find the row it is told about.
            after_commit(session, lambda: dispatcher.send(Step.VERIFY, item.id, item.sha256))
            return item

        return await anyio.to_thread.run_sync(store_and_record)

"""Case attachments as media items: the metadata they are recorded with, and the item itself
(received by ``archive.ingest.attachments``)."""

from __future__ import annotations

from sqlmodel import Session

from archive.access import actor
from archive.accounts.models import User
from archive.cases.access import ATTACHMENT_DEVICE, get_case, require_writer
from archive.cases.linking import make_link
from archive.cases.models import (
    LinkSource,
)
from archive.clock import Clock, utcnow
from archive.errors import Forbidden
from archive.i18n import _
from archive.ingest import uploads
from archive.ingest.models import Upload, UploadState
from archive.media.models import Media


def attachment_metadata(user: User, filename: str, content_type: str, sha256: str) -> dict[str, str]:
    """The upload metadata an attachment is recorded with, checked as a dock's would be. The API
    calls this before it reads or stores a byte, so a bad name or type leaves nothing behind."""
    meta = {
        "filename": filename,
        "officer": user.name,
        "device": ATTACHMENT_DEVICE,
        "sha256": sha256,
        "content_type": content_type,
    }
    uploads.DockMetadata.parse(meta)
    return meta


def add_attachment(
    session: Session,
    user: User,
    case_id: str,
    *,
    upload_id: str,
    object_key: str,
    filename: str,
    content_type: str,
    size: int,
    sha256: str,
    part_size: int,
    addr: str = "",
    clock: Clock = utcnow,
) -> Media:
    """Record a scan or PDF whose bytes are already at ``object_key`` in the originals bucket as a
    finished upload, exactly as the tus endpoint does (same media row, same ``media.receive`` event;
    the caller then sends it to the same verify -> probe -> derive -> sign pipeline), and link it to
    the case as an attachment so the case's reviewers can see it and a record can name it.

    The uploader stands as the item's "officer" and ``case-attachment`` as its device; it has no
    recording time, so the auto-link rule never considers it and the timeline lists it last."""
    case = get_case(session, user, case_id)
    require_writer(session, user, case)
    if user.id is None:
        raise Forbidden(_("no such account"))
    upload = Upload(
        id=upload_id,
        length=size,
        part_size=part_size,
        object_key=object_key,
        created_by=user.id,
        metadata_=attachment_metadata(user, filename, content_type, sha256),
        state=UploadState.COMPLETE,
        offset=size,
    )
    session.add(upload)
    session.flush()
    item = uploads.complete_upload(session, upload, user, addr, None)
    make_link(
        session,
        actor(user),
        case,
        item.id,
        LinkSource.ATTACHMENT,
        f"attachment {filename} uploaded to case {case.number}",
        None,
        addr,
        clock,
    )
    return item

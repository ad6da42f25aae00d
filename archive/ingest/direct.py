"""Direct uploads: the dock PUTs parts straight to S3; the API grants, checks and completes.

The bytes of a recording never pass through the API. For one upload (created through tus
creation, so the metadata rules are the same) the dock asks for presigned part URLs: each URL is
one UploadPart (this part number of this S3 multipart upload, nothing else), for the officer who
owns the upload, valid for ``direct_part_url_ttl_s``, and signed for the S3 endpoint the docks reach
(``s3_public_endpoint``). After a PUT the dock reports the part (number, size, ETag); the part
counts only once S3's own list of the upload's parts (ListParts) shows that size and ETag. The
completion is the API's: it checks every part against S3 once more, completes the multipart
upload and records the media item awaiting verification, exactly as a finished tus upload.

Part *n* always holds bytes ``[(n-1)*part_size, n*part_size)``, as in the tus path, so parts may
land in any order and a re-sent part overwrites itself. The upload's tus offset is the contiguous
prefix of acknowledged parts; a tus client may continue an upload only while its parts are
contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from archive.access import Permission, authorize
from archive.accounts.models import User
from archive.clock import Clock, utcnow
from archive.context import Dispatcher
from archive.db import after_commit
from archive.errors import Conflict, InvalidInput, ObjectMissing
from archive.hashing import parse_sha256
from archive.i18n import _
from archive.ingest import uploads
from archive.ingest.models import Upload, UploadState
from archive.ingest.pipeline import Step
from archive.media.models import Media, MediaState
from archive.storage import ObjectStore, PartInfo

__all__ = [
    "DirectGrant",
    "PartGrant",
    "Reopened",
    "ReportedPart",
    "UploadProgress",
    "complete",
    "expected_part_size",
    "grant_parts",
    "part_count",
    "progress",
    "report_parts",
]


@dataclass(frozen=True)
class ReportedPart:
    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class PartGrant:
    number: int
    size: int
    url: str


@dataclass(frozen=True)
class DirectGrant:
    part_size: int
    expires_at: datetime
    parts: list[PartGrant]
    # Headers each part PUT carries beside its URL: the SSE-C key of this one object when
    # encryption at rest is on (S3 refuses a part of an SSE-C upload without it), else none.
    headers: dict[str, str]


@dataclass(frozen=True)
class Reopened:
    """Completion found parts in S3 other than the ones acknowledged (re-sent after their report):
    they are no longer acknowledged, and the dock must send and report them again."""

    parts: list[int]
    problems: list[str]


@dataclass(frozen=True)
class UploadProgress:
    upload_id: str
    state: UploadState
    length: int
    part_size: int
    part_count: int
    offset: int  # contiguous prefix of acknowledged parts (the tus offset)
    acknowledged_bytes: int
    parts: list[ReportedPart]  # acknowledged, by number
    media_id: str | None


def part_count(upload: Upload) -> int:
    return max(1, -(-upload.length // upload.part_size))


def expected_part_size(upload: Upload, number: int) -> int:
    n = part_count(upload)
    if not 1 <= number <= n:
        raise InvalidInput(_("part number must be between 1 and {n}").format(n=n))
    return upload.part_size if number < n else upload.length - (n - 1) * upload.part_size


def contiguous_offset(parts: list[dict[str, Any]]) -> int:
    """Bytes from the start covered by parts 1, 2, ... without a gap."""
    by_number = {int(p["n"]): int(p["size"]) for p in parts}
    offset, n = 0, 1
    while n in by_number:
        offset += by_number[n]
        n += 1
    return offset


def _progress(upload: Upload) -> UploadProgress:
    parts = sorted(
        (ReportedPart(int(p["n"]), int(p["size"]), str(p["etag"])) for p in upload.parts),
        key=lambda p: p.number,
    )
    return UploadProgress(
        upload_id=upload.id,
        state=upload.state,
        length=upload.length,
        part_size=upload.part_size,
        part_count=part_count(upload),
        offset=upload.offset,
        acknowledged_bytes=sum(p.size for p in parts),
        parts=parts,
        media_id=upload.media_id,
    )


def _own_upload(session: Session, user: User, upload_id: str, *, lock: bool) -> Upload:
    authorize(user, Permission.UPLOAD)
    upload = uploads.get_upload_for(session, upload_id, user)
    if lock:
        # Parallel part reports of one upload rewrite the same row: one at a time.
        locked = session.exec(select(Upload).where(Upload.id == upload_id).with_for_update()).one()
        session.refresh(locked)
        return locked
    return upload


def _open(upload: Upload) -> None:
    if upload.state is not UploadState.OPEN:
        raise Conflict(_("upload is {state}: it takes no more parts").format(state=upload.state.value))
    if upload.tail_size:
        raise Conflict(
            _("this upload holds bytes sent through tus PATCH that do not fill a part: continue with PATCH")
        )


def progress(session: Session, user: User, upload_id: str) -> UploadProgress:
    """Which parts the archive has acknowledged: the dock re-sends only the others."""
    return _progress(_own_upload(session, user, upload_id, lock=False))


def grant_parts(
    session: Session,
    store: ObjectStore,
    user: User,
    upload_id: str,
    numbers: list[int],
    *,
    ttl: timedelta,
    max_parts: int,
    clock: Clock = utcnow,
) -> DirectGrant:
    """Presigned PUT URLs for the given parts of one open upload owned by ``user``."""
    upload = _own_upload(session, user, upload_id, lock=False)
    _open(upload)
    if not numbers:
        raise InvalidInput(_("ask for at least one part"))
    if len(numbers) > max_parts:
        raise InvalidInput(_("ask for at most {n} parts at once").format(n=max_parts))
    if len(set(numbers)) != len(numbers):
        raise InvalidInput(_("part numbers repeat"))
    sizes = {n: expected_part_size(upload, n) for n in numbers}
    expires_at = clock() + ttl
    grants = [
        PartGrant(
            n,
            sizes[n],
            store.presign_upload_part(store.originals, upload.object_key, upload.multipart_id or "", n, ttl),
        )
        for n in numbers
    ]
    headers = store.upload_part_headers(store.originals, upload.object_key)
    return DirectGrant(upload.part_size, expires_at, grants, headers)


def _check_against_storage(
    upload: Upload, listed: dict[int, PartInfo], parts: list[ReportedPart]
) -> list[str]:
    problems = []
    for part in parts:
        held = listed.get(part.number)
        if held is None:
            problems.append(_("part {n} is not in storage").format(n=part.number))
        elif held.size != part.size or held.etag.strip('"') != part.etag.strip('"'):
            problems.append(
                _("part {n}: storage holds {size} bytes with ETag {etag}").format(
                    n=part.number, size=held.size, etag=held.etag
                )
            )
    return problems


def report_parts(
    session: Session,
    store: ObjectStore,
    user: User,
    upload_id: str,
    parts: list[ReportedPart],
    *,
    clock: Clock = utcnow,
) -> UploadProgress:
    """Acknowledge parts the dock has PUT, each only if S3 lists it with the reported size and ETag."""
    if not parts:
        raise InvalidInput(_("report at least one part"))
    upload = _own_upload(session, user, upload_id, lock=True)
    if upload.state is UploadState.COMPLETE:
        return _progress(upload)  # a report repeated after completion (lost answer) changes nothing
    _open(upload)
    for part in parts:
        want = expected_part_size(upload, part.number)
        if part.size != want:
            raise InvalidInput(
                _("part {n} must be {want} bytes, not {size}").format(
                    n=part.number, want=want, size=part.size
                )
            )
    numbers = sorted(p.number for p in parts)
    listed = {
        p.number: p
        for p in store.list_parts(
            store.originals, upload.object_key, upload.multipart_id or "", numbers[0], numbers[-1]
        )
    }
    problems = _check_against_storage(upload, listed, parts)
    if problems:
        raise Conflict("; ".join(problems))
    merged = {int(p["n"]): dict(p) for p in upload.parts}
    for part in parts:
        merged[part.number] = {"n": part.number, "etag": part.etag.strip('"'), "size": part.size}
    upload.parts = [merged[n] for n in sorted(merged)]
    upload.offset = contiguous_offset(upload.parts)
    upload.updated_at = clock()
    session.add(upload)
    session.flush()
    return _progress(upload)


def complete(
    session: Session,
    store: ObjectStore,
    user: User,
    upload_id: str,
    sha256: str | None,
    client_addr: str,
    dispatcher: Dispatcher,
    *,
    clock: Clock = utcnow,
) -> Media | Reopened:
    """Complete the S3 multipart upload from the acknowledged parts and record the media item
    (awaiting verification), sent to verification once the unit of work commits. Idempotent: a
    repeated completion returns the same item. Parts that S3 no longer holds as acknowledged are
    un-acknowledged instead (:class:`Reopened`; the caller commits that too)."""
    declared = parse_sha256(sha256) if sha256 else None
    upload = _own_upload(session, user, upload_id, lock=True)
    if upload.state is UploadState.COMPLETE and upload.media_id:
        media = session.get(Media, upload.media_id)
        if media is not None:
            return media
    _open(upload)
    in_metadata = str(upload.metadata_.get("sha256", "")).strip().lower()
    if declared and in_metadata not in (uploads.DEFERRED, declared):
        raise InvalidInput(_("the SHA-256 differs from the one declared when the upload was created"))
    n = part_count(upload)
    have = {int(p["n"]): p for p in upload.parts}
    missing = [i for i in range(1, n + 1) if i not in have]
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise Conflict(_("parts not yet acknowledged: {parts}").format(parts=shown))
    recorded = [ReportedPart(i, int(have[i]["size"]), str(have[i]["etag"])) for i in range(1, n + 1)]
    try:
        listed = {
            p.number: p
            for p in store.list_parts(store.originals, upload.object_key, upload.multipart_id or "")
        }
    except ObjectMissing:
        listed = {}  # completed by an attempt whose commit was lost: checked by size below
    if listed or not store.exists(store.originals, upload.object_key):
        problems = _check_against_storage(upload, listed, recorded)
        if problems:
            bad = [
                p.number
                for p in recorded
                if (held := listed.get(p.number)) is None
                or held.size != p.size
                or held.etag.strip('"') != p.etag.strip('"')
            ]
            upload.parts = [p for p in upload.parts if int(p["n"]) not in bad]
            upload.offset = contiguous_offset(upload.parts)
            upload.updated_at = clock()
            session.add(upload)
            return Reopened(bad, problems)
        store.complete_multipart(
            store.originals,
            upload.object_key,
            upload.multipart_id or "",
            [(p.number, p.etag) for p in recorded],
        )
    if store.stat(store.originals, upload.object_key).size != upload.length:
        raise Conflict(_("the stored object does not have the upload's length"))
    upload.offset = upload.length
    upload.updated_at = clock()
    media = uploads.complete_upload(session, upload, user, client_addr, declared)
    if media.state is MediaState.RECEIVED:
        after_commit(session, lambda: dispatcher.send(Step.VERIFY, media.id, media.sha256))
    return media

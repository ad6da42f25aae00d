"""Resumable uploads (tus 1.0) into S3, in bounded memory, surviving restarts.

Bytes of an upload go to one S3 multipart upload, in parts of ``part_size`` bytes; part *n*
always holds bytes ``[(n-1)*part_size, n*part_size)``, so a part re-sent after a crash overwrites
itself with the same bytes. Bytes that do not yet fill a part are kept in a small "tail" object,
so an API restart or a dropped connection loses nothing that was acknowledged. The database row
is the only record of progress and is written after the bytes it describes are in S3.

Memory per PATCH: about (2 + parts in flight) x ``part_size`` (see :mod:`archive.ingest.patch`).
"""

from __future__ import annotations

import collections
import contextlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from archive import events, logs, metrics
from archive.access import Permission, actor, authorize, can
from archive.accounts import devices
from archive.accounts.models import Officer, User
from archive.clock import as_utc, checked_utc, utcnow
from archive.errors import Conflict, Forbidden, InvalidInput, NotFound, ObjectMissing, StorageError, TooLarge
from archive.hashing import parse_sha256
from archive.i18n import _
from archive.ingest.models import Upload, UploadState, UploadStatusPublic
from archive.ingest.tus import DEFERRED, encode_metadata, parse_metadata
from archive.media.models import ClockSource, Media
from archive.publicity import roster as publicity_roster
from archive.storage import ObjectStore

__all__ = ["DEFERRED", "encode_metadata", "parse_metadata"]

# Badges and serials; "@" too, since an account name (accounts._NAME) stands as the officer of a
# case attachment.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")
MAX_NAME_BYTES = 255
_SPOOFING = frozenset({"Cf", "Zl", "Zp"})  # format characters (bidi controls, zero-width), separators


def check_file_name(name: str) -> str:
    """A recorder's file name is kept as a label, never used as a path; refuse what cannot be a name."""
    if not name:
        raise InvalidInput(_("filename is required"))
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidInput(_("filename contains control characters"))
    if any(unicodedata.category(c) in _SPOOFING for c in name):
        # Bidirectional overrides and isolates, zero-width characters, line separators: a name
        # shown as "clipexe.png" that is "clip<RLO>gnp.exe" (issue 10).
        raise InvalidInput(_("filename contains invisible or bidirectional formatting characters"))
    if "/" in name or "\\" in name:
        raise InvalidInput(_("filename must be a bare name without path separators (use 'path' for folders)"))
    if name in {".", ".."}:
        raise InvalidInput(_("filename must not be '.' or '..'"))
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidInput(
            _("filename is longer than {max_name_bytes} bytes").format(max_name_bytes=MAX_NAME_BYTES)
        )
    return name


def check_source_path(path: str) -> str:
    """The file's path inside the recorder's folder: relative, no '..', no control characters."""
    if not path:
        return ""
    if any(unicodedata.category(c) == "Cc" for c in path) or "\\" in path:
        raise InvalidInput(_("path contains control characters or backslashes"))
    parts = path.split("/")
    if path.startswith("/") or any(p in {"", ".", ".."} for p in parts):
        raise InvalidInput(_("path must be relative to the recorder's folder, without '.' or '..' parts"))
    if len(path.encode("utf-8")) > 1024:
        raise InvalidInput(_("path is longer than 1024 bytes"))
    return path


@dataclass(frozen=True)
class DockMetadata:
    filename: str
    source_path: str
    officer: str
    device: str
    sha256: str  # hex, or DEFERRED
    recorded_at: datetime | None
    content_type: str
    clock_offset_s: float
    clock_source: ClockSource

    @classmethod
    def parse(cls, meta: dict[str, str]) -> DockMetadata:
        for required in ("filename", "officer", "device", "sha256"):
            if not meta.get(required):
                raise InvalidInput(_("Upload-Metadata must name {required!r}").format(required=required))
        for key in ("officer", "device"):
            if not _ID.match(meta[key]):
                raise InvalidInput(
                    _("{key} must be 1-64 letters, digits, '.', '_', ':' or '-'").format(key=key)
                )
        sha = meta["sha256"].strip().lower()
        if sha != DEFERRED:
            sha = parse_sha256(sha)
        recorded_at = None
        if meta.get("recorded_at"):
            try:
                recorded_at = datetime.fromisoformat(meta["recorded_at"])
            except ValueError as exc:
                raise InvalidInput(_("recorded_at must be an ISO 8601 time")) from exc
            if recorded_at.tzinfo is None:
                raise InvalidInput(_("recorded_at must carry a UTC offset"))
            recorded_at = checked_utc(recorded_at, "recorded_at")
        offset = 0.0
        if meta.get("clock_offset_s"):
            try:
                offset = float(meta["clock_offset_s"])
            except ValueError as exc:
                raise InvalidInput(_("clock_offset_s must be a number of seconds")) from exc
            if not -10 * 365 * 86400 < offset < 10 * 365 * 86400:
                raise InvalidInput(_("clock_offset_s is out of range"))
        try:
            source = ClockSource(meta.get("clock_source") or ClockSource.ASSUMED)
        except ValueError as exc:
            raise InvalidInput(_("clock_source must be measured, stated or assumed")) from exc
        content_type = meta.get("content_type") or meta.get("filetype") or "application/octet-stream"
        if len(content_type) > 128 or not re.match(r"^[\w.+-]+/[\w.+-]+$", content_type):
            raise InvalidInput(_("content_type is not a media type"))
        return cls(
            filename=check_file_name(meta["filename"]),
            source_path=check_source_path(meta.get("path", "")),
            officer=meta["officer"],
            device=meta["device"],
            sha256=sha,
            recorded_at=recorded_at,
            content_type=content_type,
            clock_offset_s=offset,
            clock_source=source,
        )


def create_upload(
    session: Session,
    *,
    user: User,
    length: int,
    meta: dict[str, str],
    part_size: int,
    max_bytes: int,
    client_addr: str,
    store: ObjectStore,
) -> Upload:
    authorize(user, Permission.UPLOAD, "upload")
    if length == 0:
        raise InvalidInput(_("zero-length file: a recording with no bytes cannot be archived"))
    if length < 0:
        raise InvalidInput(_("Upload-Length must not be negative"))
    if length > max_bytes:
        raise TooLarge(
            _("Upload-Length {length} exceeds the limit of {max_bytes} bytes").format(
                length=length, max_bytes=max_bytes
            )
        )
    dock = DockMetadata.parse(meta)
    if dock.officer != user.name and not can(user, Permission.UPLOAD_AS_ANYONE):
        raise Forbidden(
            _("officer {name} may not upload recordings of officer {officer}").format(
                name=user.name, officer=dock.officer
            )
        )
    upload = Upload(
        length=length, part_size=part_size, metadata_=meta, created_by=user.id or 0, object_key=""
    )
    upload.object_key = f"originals/{upload.id}"
    upload.multipart_id = store.start_multipart(store.originals, upload.object_key, dock.content_type)
    session.add(upload)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="upload.create",
        subject_type="upload",
        subject_id=upload.id,
        client_addr=client_addr,
        details={
            "length": length,
            "filename": dock.filename,
            "officer": dock.officer,
            "device": dock.device,
            "declared_sha256": dock.sha256,
        },
    )
    return upload


def get_upload_for(session: Session, upload_id: str, user: User) -> Upload:
    upload = session.get(Upload, upload_id)
    if upload is None or upload.state is UploadState.TERMINATED:
        raise NotFound(_("no upload {upload_id}").format(upload_id=upload_id))
    if upload.created_by != user.id and not can(user, Permission.UPLOAD_MANAGE_ALL):
        # Someone else's upload: as far as this user knows, it does not exist.
        raise NotFound(_("no upload {upload_id}").format(upload_id=upload_id))
    return upload


def upload_status(session: Session, user: User, upload_id: str) -> UploadStatusPublic:
    upload = get_upload_for(session, upload_id, user)
    media = session.get(Media, upload.media_id) if upload.media_id else None
    return UploadStatusPublic(
        id=upload.id,
        state=upload.state,
        offset=upload.offset,
        length=upload.length,
        media_id=upload.media_id,
        media_state=media.state if media else None,
        media_reason=media.state_reason if media else None,
        duplicate_of=media.duplicate_of if media else None,
    )


def tail_key(upload: Upload) -> str:
    return f"tus-tails/{upload.id}"


class ChunkBuffer:
    """Received bytes as the list of chunks they arrived in: appending copies nothing, and taking
    a part joins its chunks once (a bytearray copied every byte twice)."""

    def __init__(self) -> None:
        self.chunks: collections.deque[bytes] = collections.deque()
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def append(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)

    def take(self, n: int) -> bytes:
        """Remove and return the first ``n`` bytes (n <= len(self))."""
        out: list[bytes] = []
        need = n
        while need:
            head = self.chunks[0]
            if len(head) <= need:
                out.append(self.chunks.popleft())
                need -= len(head)
            else:
                out.append(head[:need])
                self.chunks[0] = head[need:]
                need = 0
        self.size -= n
        return b"".join(out)

    def getvalue(self) -> bytes:
        return b"".join(self.chunks)

    def clear(self) -> None:
        self.chunks.clear()
        self.size = 0


class PartWriter:
    """Accumulates PATCH bytes and writes whole parts to S3. Not thread-safe: one per PATCH,
    under the upload's lock."""

    def __init__(self, store: ObjectStore, upload: Upload) -> None:
        self.store = store
        self.bucket = store.originals
        self.key = upload.object_key
        self.multipart_id = upload.multipart_id or ""
        self.part_size = upload.part_size
        self.length = upload.length
        self.parts: list[dict[str, Any]] = [dict(p) for p in upload.parts]
        if [int(p["n"]) for p in self.parts] != list(range(1, len(self.parts) + 1)):
            # Parts acknowledged out of order by a direct upload (archive.ingest.direct).
            raise Conflict("this upload's parts are being sent directly to storage: continue it that way")
        # Kept as a running total: offset is read for every network chunk of a PATCH.
        self.parts_bytes = sum(int(p["size"]) for p in self.parts)
        self.start_offset = upload.offset
        self.tail_size = upload.tail_size
        self.tail_object_key = tail_key(upload)
        self.buf = ChunkBuffer()
        # Parts taken from the buffer whose S3 write has not been confirmed yet (see take_part).
        self.in_flight = 0
        self.in_flight_bytes = 0

    def _add_part(self, number: int, etag: str, size: int) -> None:
        self.parts.append({"n": number, "etag": etag, "size": size})
        self.parts_bytes += size

    @property
    def offset(self) -> int:
        return self.parts_bytes + self.in_flight_bytes + len(self.buf)

    def load_tail(self) -> None:
        if self.tail_size:
            with self.store.open_stream(self.bucket, self.tail_object_key, 0, self.tail_size) as chunks:
                for c in chunks:
                    self.buf.append(c)
            if len(self.buf) != self.tail_size:
                raise StorageError(
                    f"tail of upload {self.key} has {len(self.buf)} bytes, expected {self.tail_size}"
                )

    def room(self) -> int:
        return self.length - self.offset

    def add(self, chunk: bytes) -> None:
        if len(chunk) > self.room():
            raise InvalidInput(
                _("PATCH carries more bytes than Upload-Length {length} allows").format(length=self.length)
            )
        self.buf.append(chunk)

    @property
    def has_full_part(self) -> bool:
        return len(self.buf) >= self.part_size

    # Pipelined writing, for a caller that keeps receiving while parts go to S3:
    # take_part (caller's thread) -> write_part (any thread) -> part_written (caller's thread),
    # with part_written called in the order the parts were taken.

    def take_part(self) -> tuple[int, bytes]:
        """Remove the next whole part from the buffer and number it."""
        number = len(self.parts) + self.in_flight + 1
        data = self.buf.take(self.part_size)
        self.in_flight += 1
        self.in_flight_bytes += len(data)
        return number, data

    def write_part(self, number: int, data: bytes) -> str:
        """Write a taken part to S3; returns its ETag. Touches no writer state."""
        return self.store.upload_part(self.bucket, self.key, self.multipart_id, number, data)

    def part_written(self, number: int, size: int, etag: str) -> None:
        if number != len(self.parts) + 1:
            raise RuntimeError(f"part {number} confirmed out of order after {len(self.parts)} parts")
        self._add_part(number, etag, size)
        self.in_flight -= 1
        self.in_flight_bytes -= size

    def part_abandoned(self, size: int) -> None:
        """A taken part whose write failed or was not awaited: its bytes are not durable, and
        nothing after it counts either (the next PATCH resumes from the durable parts)."""
        self.in_flight -= 1
        self.in_flight_bytes -= size

    def finish(self) -> bool:
        """Write what is left. Returns True when the upload is complete."""
        if self.in_flight:
            raise RuntimeError("finish() with part writes still in flight")
        if self.offset == self.length:
            if self.buf:
                number = len(self.parts) + 1
                etag = self.store.upload_part(
                    self.bucket, self.key, self.multipart_id, number, self.buf.getvalue()
                )
                self._add_part(number, etag, len(self.buf))
                self.buf.clear()
            try:
                self.store.complete_multipart(
                    self.bucket, self.key, self.multipart_id, [(p["n"], p["etag"]) for p in self.parts]
                )
            except ObjectMissing:
                # Completed by an earlier attempt whose database commit was lost: the object is there.
                if self.store.stat(self.bucket, self.key).size != self.length:
                    raise
            return True
        if self.buf:
            self.store.put_bytes(
                self.bucket, self.tail_object_key, self.buf.getvalue(), "application/octet-stream"
            )
        return False

    def save_durable_parts(self, upload: Upload) -> None:
        """Record progress mid-stream: only whole parts already in S3. Bytes still in memory are
        not durable yet (they reach S3 as a part or as the tail object in :meth:`finish`)."""
        upload.parts = list(self.parts)
        upload.tail_size = 0
        upload.offset = self.parts_bytes
        upload.updated_at = utcnow()

    def save_progress(self, upload: Upload) -> None:
        """Record progress after :meth:`finish`: the parts plus the tail object just written."""
        upload.parts = list(self.parts)
        upload.tail_size = len(self.buf)
        upload.offset = self.offset
        upload.updated_at = utcnow()


def complete_upload(
    session: Session, upload: Upload, user: User, client_addr: str, sha256: str | None
) -> Media:
    """Record a finished upload as a media item awaiting verification (idempotent)."""
    if upload.media_id:
        media = session.get(Media, upload.media_id)
        if media is not None:
            return media
    dock = DockMetadata.parse(upload.metadata_)
    declared = dock.sha256
    if declared == DEFERRED:
        if not sha256:
            raise InvalidInput(
                _("this upload deferred its SHA-256: the final PATCH must carry Custody-Sha256")
            )
        declared = parse_sha256(sha256)
    if session.get(Officer, dock.officer) is None:
        session.add(Officer(badge=dock.officer, name=dock.officer))
        session.flush()
    # Issue 10, finding 3: a dock never registers its device; one its officer may not dock is flagged.
    device_flag = devices.check_dock(session, dock.device, dock.officer, who=actor(user), addr=client_addr)
    media = Media(
        sha256=declared,
        size=upload.length,
        content_type=dock.content_type,
        file_name=dock.filename,
        source_path=dock.source_path,
        officer_badge=dock.officer,
        device_serial=dock.device,
        recorded_at=dock.recorded_at,
        clock_offset_s=dock.clock_offset_s,
        clock_source=dock.clock_source,
        object_key=upload.object_key,
        upload_id=upload.id,
    )
    session.add(media)
    upload.state = UploadState.COMPLETE
    upload.media_id = media.id
    session.flush()
    metrics.DOCKED_FILES.inc()
    metrics.DOCKED_BYTES.inc(upload.length)
    metrics.UPLOAD_SECONDS.observe(max(0.0, (utcnow() - as_utc(upload.created_at)).total_seconds()))
    logs.media_id.set(media.id)
    events.record(
        session,
        actor=actor(user),
        action="media.receive",
        subject_type="media",
        subject_id=media.id,
        client_addr=client_addr,
        details={
            "upload": upload.id,
            "declared_sha256": declared,
            "size": upload.length,
            "filename": dock.filename,
            "officer": dock.officer,
            "device": dock.device,
            "recorded_at": dock.recorded_at.isoformat() if dock.recorded_at else None,
            "clock_offset_s": dock.clock_offset_s,
            "clock_source": dock.clock_source,
        },
    )
    # Issue 14: evidence is never refused, but a recording by an officer without a valid enforcement
    # certificate on its date is flagged and listed.
    publicity_roster.flag_recording(session, media)
    devices.flag_media(
        session, media.id, dock.device, dock.officer, device_flag, who=actor(user), addr=client_addr
    )
    return media


def terminate_upload(
    session: Session, store: ObjectStore, upload: Upload, user: User, client_addr: str
) -> None:
    if upload.state is UploadState.COMPLETE:
        raise Conflict(_("upload is complete: archived bytes cannot be withdrawn through tus termination"))
    if upload.multipart_id:
        with contextlib.suppress(ObjectMissing):
            store.abort_multipart(store.originals, upload.object_key, upload.multipart_id)
    if upload.tail_size:
        store.delete(store.originals, tail_key(upload))
    upload.state = UploadState.TERMINATED
    upload.updated_at = utcnow()
    events.record(
        session,
        actor=actor(user),
        action="upload.terminate",
        subject_type="upload",
        subject_id=upload.id,
        client_addr=client_addr,
        details={"offset": upload.offset},
    )


def open_uploads_for(session: Session, user: User) -> list[Upload]:
    return list(
        session.exec(select(Upload).where(Upload.created_by == user.id, Upload.state == UploadState.OPEN))
    )

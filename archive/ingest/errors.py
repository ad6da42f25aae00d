"""Ingest errors, each with the HTTP status the tus protocol gives it."""

from __future__ import annotations

from archive.errors import CustodyError


class ChecksumMismatch(CustodyError):
    """Upload-Checksum did not match the PATCH body (tus checksum extension: 460)."""

    http_status = 460
    code = "upload.checksum_mismatch"


class Locked(CustodyError):
    """Another PATCH holds the upload (423, with Retry-After)."""

    http_status = 423
    code = "upload.locked"


class PreconditionFailed(CustodyError):
    """The client speaks another tus version."""

    http_status = 412
    code = "upload.precondition_failed"


class UnsupportedMedia(CustodyError):
    """A PATCH body that is not application/offset+octet-stream."""

    http_status = 415
    code = "upload.unsupported_media_type"


class BodyCut(Exception):
    """The request body ended early because the client disconnected (raised by the body iterator
    the web layer hands to :func:`archive.ingest.patch.receive_patch`)."""

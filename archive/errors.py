"""One exception hierarchy for the whole archive.

Every error a user can cause or an auditor must see is a ``CustodyError``; the API maps
each subclass to one HTTP status in a single handler, the CLI to an exit code.
Messages name what failed and where, because an auditor reads them.
"""


class CustodyError(Exception):
    """Base of every error the archive raises on purpose."""

    http_status = 500


class InvalidInput(CustodyError):
    """A request or file the archive refuses: malformed, oversized, hostile."""

    http_status = 400


class NotFound(CustodyError):
    http_status = 404


class Concealed(NotFound):
    """A refusal answered as 404 so that the existence of the thing is not disclosed (another
    officer's recording). The API still writes it to the custody log as ``access.denied``."""


class Conflict(CustodyError):
    """The request contradicts what is stored (offset mismatch, duplicate, wrong state)."""

    http_status = 409


class Unauthorized(CustodyError):
    http_status = 401


class Forbidden(CustodyError):
    http_status = 403


class TooLarge(CustodyError):
    http_status = 413


class IntegrityError(CustodyError):
    """Bytes or records do not match their recorded digest or signature."""

    http_status = 422


class SignatureInvalid(IntegrityError):
    pass


class StorageError(CustodyError):
    """The object store failed or answered something unexpected. The message names bucket and
    key for the logs; the API never shows it to a client."""

    http_status = 503


class ObjectMissing(StorageError):
    """An object the archive expected is not in storage."""


class UndecodableMedia(CustodyError):
    """ffmpeg cannot read the file. The original is still archived, hashed and signed."""

    http_status = 422

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MediaToolFailed(CustodyError):
    """ffmpeg/ffprobe crashed, stalled or timed out on a file it could otherwise read (retryable)."""

    http_status = 503

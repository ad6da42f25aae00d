"""One exception hierarchy for the whole archive.

Every error a user can cause or an auditor must see is a ``CustodyError``; the API maps
each subclass to one HTTP status in a single handler, the CLI to an exit code.
Messages name what failed and where, because an auditor reads them; they are written as
``_("English text")`` and read in the request's language (archive.i18n).

Each class states a stable machine ``code`` (``case.not_found``) that the API returns beside the
translated ``detail``, so clients never parse text. Codes are part of the API: never change or
reuse one. Every subclass declares its own (tests/archive/test_error_codes.py checks it): a family
name for the generic classes (``not_found``), ``<domain>.<what>`` for a domain's own. A raise site
may be finer than its class with ``code=`` (``raise Conflict(msg, code="upload.offset_mismatch")``).
A ``Concealed`` refusal must carry the code the real "not found" of that thing would carry.
"""

from __future__ import annotations

from typing import ClassVar


class CustodyError(Exception):
    """Base of every error the archive raises on purpose."""

    http_status = 500
    code: ClassVar[str] = "internal"

    _site_code: str | None = None

    def __init__(self, *args: object, code: str | None = None) -> None:
        super().__init__(*args)
        self._site_code = code

    @property
    def error_code(self) -> str:
        """This error's machine code: the raise site's ``code=``, else its class's."""
        return self._site_code or type(self).code


class InvalidInput(CustodyError):
    """A request or file the archive refuses: malformed, oversized, hostile."""

    http_status = 400
    code = "invalid_input"


class NotFound(CustodyError):
    http_status = 404
    code = "not_found"


class Concealed(NotFound):
    """A refusal answered as 404 so that the existence of the thing is not disclosed (another
    officer's recording). The API still writes it to the custody log as ``access.denied``."""

    code = "not_found"  # the same as its parent: a client must not tell them apart


class Conflict(CustodyError):
    """The request contradicts what is stored (offset mismatch, duplicate, wrong state)."""

    http_status = 409
    code = "conflict"


class Unauthorized(CustodyError):
    http_status = 401
    code = "unauthorized"


class Forbidden(CustodyError):
    http_status = 403
    code = "forbidden"


class TooLarge(CustodyError):
    http_status = 413
    code = "too_large"


class IntegrityError(CustodyError):
    """Bytes or records do not match their recorded digest or signature."""

    http_status = 422
    code = "integrity"


class SignatureInvalid(IntegrityError):
    code = "integrity.signature_invalid"


class StorageError(CustodyError):
    """The object store failed or answered something unexpected. The message names bucket and
    key for the logs; the API never shows it to a client."""

    http_status = 503
    code = "storage.unavailable"


class ObjectMissing(StorageError):
    """An object the archive expected is not in storage."""

    code = "storage.unavailable"  # the same as its parent: a client must not tell them apart


class UndecodableMedia(CustodyError):
    """ffmpeg cannot read the file. The original is still archived, hashed and signed."""

    http_status = 422
    code = "media.undecodable"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MediaToolFailed(CustodyError):
    """ffmpeg/ffprobe crashed, stalled or timed out on a file it could otherwise read (retryable)."""

    http_status = 503
    code = "media.tool_failed"


class TooManyAttempts(CustodyError):
    """Too many failed sign-ins from one client address or against one account (429)."""

    http_status = 429
    code = "auth.throttled"

    def __init__(self, *args: object, retry_after: int = 60, code: str | None = None) -> None:
        super().__init__(*args, code=code)
        self.retry_after = max(int(retry_after), 1)

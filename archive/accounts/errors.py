"""Errors of accounts and the device registry. A refused credential says which account it named (if
any), so the per-account throttle can count it; the token itself is never kept."""

from __future__ import annotations

from archive.errors import Forbidden, InvalidInput, NotFound, Unauthorized


class InvalidSerial(InvalidInput):
    code = "device.invalid_serial"
    http_status = 422


class InvalidRegistration(InvalidInput):
    code = "device.invalid_registration"
    http_status = 422


class UnknownDevice(NotFound):
    code = "device.not_found"


class AuthFailed(Unauthorized):
    """A missing, unknown, expired, disabled or ended credential (401)."""

    code = "unauthorized"

    def __init__(self, *args: object, account: str | None = None, code: str | None = None) -> None:
        super().__init__(*args, code=code)
        self.account = account


class SignInFailed(Unauthorized):
    """A single sign-on answer the archive does not trust: wrong state, nonce, issuer, audience,
    signature, or an identity provider that failed (401)."""

    code = "auth.sso_failed"


class SignInRefused(Forbidden):
    """The identity provider vouched for someone with no enabled account here (403)."""

    code = "auth.sso_refused"


class SsoOff(NotFound):
    """Single sign-on is not configured (no CUSTODY_OIDC_ISSUER)."""

    code = "auth.sso_off"


class UserNotFound(NotFound):
    code = "user.not_found"


class UserInputInvalid(InvalidInput):
    code = "user.invalid"

"""Errors of record signatures."""

from archive.errors import Conflict, InvalidInput, SignatureInvalid


class InvalidKey(InvalidInput):
    code = "signature.invalid_key"
    http_status = 422


class SignatureRefused(SignatureInvalid):
    """The author's signature does not verify with their registered key: 422, nothing stored."""

    code = "signature.refused"


class AlreadySigned(Conflict):
    code = "signature.duplicate"

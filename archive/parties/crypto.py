"""Identity document numbers encrypted at the application level (AES-256-GCM).

The key never enters the database: it is read from ``CUSTODY_PARTY_KEY`` (base64 of 32 bytes) or from
``<key folder>/party-id.key`` (created 0600 on first use, like the signing keys). A database dump, a
backup or a replica therefore holds no readable identity number. Each ciphertext is bound to its
party and field as associated data, so a number cannot be moved to another party's row unnoticed.

Finding a party again by its number (the same person in two cases) uses a keyed blind index
(HMAC-SHA256 under a key derived from the same secret), never the plain number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from archive.config import Settings
from archive.errors import IntegrityError
from archive.i18n import _

KEY_FILE = "party-id.key"
_PREFIX = "v1"


def normalise(number: str) -> str:
    """The form numbers are compared in: NFKC (full-width digits become ASCII), no spaces or dashes,
    upper case (the check character X of a resident identity number)."""
    text = unicodedata.normalize("NFKC", number)
    return "".join(ch for ch in text if not ch.isspace() and ch != "-").upper()


def mask(number: str) -> str:
    """Shown to roles that do not need the number: all but the last four characters hidden."""
    keep = 4 if len(number) > 6 else 1
    return "*" * (len(number) - keep) + number[-keep:]


@dataclass(frozen=True)
class IdCipher:
    key: bytes

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"custody-party-key-id" + self.key).hexdigest()[:16]

    def _index_key(self) -> bytes:
        return hmac.new(self.key, b"custody-party-blind-index", hashlib.sha256).digest()

    def blind_index(self, number: str) -> str:
        return hmac.new(self._index_key(), normalise(number).encode(), hashlib.sha256).hexdigest()

    def encrypt(self, plain: str, *, bound_to: str) -> str:
        nonce = os.urandom(12)
        ct = AESGCM(self.key).encrypt(nonce, plain.encode(), bound_to.encode())
        return f"{_PREFIX}:{self.key_id}:{base64.b64encode(nonce + ct).decode('ascii')}"

    def decrypt(self, token: str, *, bound_to: str) -> str:
        try:
            prefix, key_id, body = token.split(":", 2)
            if prefix != _PREFIX or key_id != self.key_id:
                raise ValueError(key_id)
            raw = base64.b64decode(body, validate=True)
            return AESGCM(self.key).decrypt(raw[:12], raw[12:], bound_to.encode()).decode()
        except (ValueError, InvalidTag) as exc:
            raise IntegrityError(
                _("identity number of {subject} does not decrypt with the party key {key_id}").format(
                    subject=bound_to, key_id=self.key_id
                )
            ) from exc


def _key_from_file(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(base64.b64encode(AESGCM.generate_key(bit_length=256)) + b"\n")
    if path.stat().st_mode & 0o077:
        raise IntegrityError(_("party key file {path} is readable by others; chmod 600 it").format(path=path))
    return base64.b64decode(path.read_bytes().strip(), validate=True)


def cipher_from_settings(settings: Settings) -> IdCipher:
    if settings.party_key is not None:
        key = base64.b64decode(settings.party_key.get_secret_value(), validate=True)
    else:
        key = _key_from_file(settings.resolved_key_dir() / KEY_FILE)
    if len(key) != 32:
        raise IntegrityError(_("the party key must be 32 bytes (base64)"))
    return IdCipher(key)

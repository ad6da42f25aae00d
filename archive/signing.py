"""Ed25519 signing of canonical JSON manifests.

A manifest is serialised by RFC 8785 (JSON Canonicalization Scheme), so anyone can rebuild the
exact signed bytes from the JSON alone; the signature covers those bytes. Keys live in files under
``key_dir`` (created on first use, mode 0600, never logged); the key id is the first 16 hex
characters of the SHA-256 of the raw public key, so a verifier can derive it from the key itself.
Old keys stay in the key directory after rotation so that old signatures remain verifiable.

Two backends, chosen by ``Settings.signing_backend`` (:meth:`Keyring.from_settings`):

- ``file`` (the embedded default): ``<key_id>.pem`` private key files, as above;
- ``pkcs11``: the private key is generated inside an HSM or token reached through a PKCS#11
  module (CKM_EDDSA on a CKK_EC_EDWARDS key, sensitive and not extractable), so this process can
  have documents signed but never holds the key. Only the public half is written to the key
  directory (``<key_id>.pub.pem``), so signatures verify without the token, and the key files of
  an earlier file backend keep verifying the signatures made with them.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from archive.errors import SignatureInvalid
from archive.i18n import _

if TYPE_CHECKING:
    from archive.config import Settings
    from archive.signing_pkcs11 import Pkcs11Signer

ALGORITHM = "ed25519"
_CURRENT = "current"  # file naming the active key id


def canonical_json(value: Any) -> bytes:
    return rfc8785.dumps(value)


def key_id_for(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


@dataclass(frozen=True)
class PublicKeyInfo:
    key_id: str
    algorithm: str
    public_key_pem: str


@dataclass(frozen=True)
class Signature:
    key_id: str
    signature_b64: str


class Keyring:
    """The signing keys in one directory: ``<key_id>.pem`` files and a ``current`` pointer; with a
    PKCS#11 ``hsm``, the private keys live in the token and the directory holds public keys."""

    def __init__(self, key_dir: Path, hsm: Pkcs11Signer | None = None) -> None:
        self.key_dir = key_dir
        self.hsm = hsm

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        if settings.signing_backend == "pkcs11":
            from archive.signing_pkcs11 import Pkcs11Signer

            return cls(settings.resolved_key_dir(), Pkcs11Signer.from_settings(settings))
        return cls(settings.resolved_key_dir())

    def _private_path(self, key_id: str) -> Path:
        return self.key_dir / f"{key_id}.pem"

    def _public_path(self, key_id: str) -> Path:
        return self.key_dir / f"{key_id}.pub.pem"

    def _set_current(self, key_id: str) -> None:
        tmp = self.key_dir / f".{_CURRENT}.tmp"
        tmp.write_text(key_id + "\n")
        tmp.replace(self.key_dir / _CURRENT)

    def _new_hsm_key(self) -> str:
        assert self.hsm is not None
        self.key_dir.mkdir(parents=True, exist_ok=True)
        self.key_dir.chmod(0o700)
        public = self.hsm.generate()
        key_id = key_id_for(public)
        fd = os.open(self._public_path(key_id), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(public_key_pem(public))
        self._set_current(key_id)
        return key_id

    def _write_new_key(self) -> str:
        if self.hsm is not None:
            return self._new_hsm_key()
        self.key_dir.mkdir(parents=True, exist_ok=True)
        self.key_dir.chmod(0o700)
        key = Ed25519PrivateKey.generate()
        key_id = key_id_for(key.public_key())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path = self._private_path(key_id)
        # O_EXCL + 0600: the private key is never readable by anyone else, not even for an instant.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        self._set_current(key_id)
        return key_id

    def current_key_id(self) -> str:
        pointer = self.key_dir / _CURRENT
        if pointer.exists():
            key_id = pointer.read_text().strip()
            # switched to an HSM: the file key stops signing (it keeps verifying); a key is made in
            # the token, as a rotation would
            if self.hsm is not None and not self.hsm.has(key_id):
                return self._new_hsm_key()
            return key_id
        return self._write_new_key()

    def rotate(self) -> str:
        """Make a new current key; earlier keys stay for verification."""
        return self._write_new_key()

    def _load_private(self, key_id: str) -> Ed25519PrivateKey:
        data = self._private_path(key_id).read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise SignatureInvalid(_("key file for {key_id} is not an Ed25519 key").format(key_id=key_id))
        return key

    def _public_key(self, key_id: str) -> Ed25519PublicKey | None:
        if self._private_path(key_id).exists():
            return self._load_private(key_id).public_key()
        path = self._public_path(key_id)
        if not path.exists():
            return None
        pub = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(pub, Ed25519PublicKey) or key_id_for(pub) != key_id:
            raise SignatureInvalid(
                _("public key file for {key_id} is not that Ed25519 key").format(key_id=key_id)
            )
        return pub

    def _key_ids(self) -> list[str]:
        names = {p.name.removesuffix(".pub.pem").removesuffix(".pem") for p in self.key_dir.glob("*.pem")}
        return sorted(names)

    def public_keys(self) -> list[PublicKeyInfo]:
        self.current_key_id()  # first run creates the key
        infos = []
        for key_id in self._key_ids():
            pub = self._public_key(key_id)
            if pub is not None:
                infos.append(PublicKeyInfo(key_id_for(pub), ALGORITHM, public_key_pem(pub)))
        return infos

    def sign(self, document: Any) -> Signature:
        key_id = self.current_key_id()
        if self.hsm is not None:
            sig = self.hsm.sign(key_id, canonical_json(document))
        else:
            sig = self._load_private(key_id).sign(canonical_json(document))
        return Signature(key_id, base64.b64encode(sig).decode("ascii"))

    def verify(self, document: Any, signature: Signature) -> None:
        pub = self._public_key(signature.key_id)
        if pub is None:
            raise SignatureInvalid(_("unknown signing key {key_id}").format(key_id=signature.key_id))
        verify_with_public_key(pub, document, signature)


def verify_with_public_key(public_key: Ed25519PublicKey, document: Any, signature: Signature) -> None:
    """Raise SignatureInvalid unless ``signature`` is a valid signature of ``document``'s canonical form."""
    try:
        raw = base64.b64decode(signature.signature_b64, validate=True)
        public_key.verify(raw, canonical_json(document))
    except (InvalidSignature, ValueError) as exc:
        raise SignatureInvalid(
            _(
                "manifest signature does not verify with key {key_id}: the manifest or "
                "its signature was altered"
            ).format(key_id=signature.key_id)
        ) from exc

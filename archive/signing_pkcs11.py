"""Ed25519 signing inside a PKCS#11 token (an HSM, a smart card, or SoftHSM2 in tests).

The key pair is generated in the token (CKM_EC_EDWARDS_KEY_PAIR_GEN on curve Ed25519), its private
half marked sensitive and not extractable, and documents are signed there with CKM_EDDSA (pure
Ed25519, the same signatures as the file backend: RFC 8032). Keys are found by their label and
their public key's id (archive.signing.key_id_for), so a token can hold the current key and the
ones rotated out.

Settings: CUSTODY_SIGNING_BACKEND=pkcs11, CUSTODY_PKCS11_MODULE (the module's path),
CUSTODY_PKCS11_TOKEN_LABEL, CUSTODY_PKCS11_PIN (the user PIN; from the agency's secret store).
The module is loaded once per process, after any fork (PKCS#11 forbids using a library
initialised in the parent).
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pkcs11
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from archive.config import Settings
from archive.errors import SignatureInvalid

LABEL = "custody-signing"
ED25519_OID = "1.3.101.112"
_libs: dict[tuple[str, int], Any] = {}
_libs_lock = threading.Lock()


class HsmError(SignatureInvalid):
    """The token cannot be reached, logged into, or does not hold the key asked for."""

    code = "signing.hsm_unavailable"


def _lib(module: str) -> Any:
    with _libs_lock:
        key = (module, os.getpid())
        if key not in _libs:
            try:
                _libs[key] = pkcs11.lib(module)
            except (RuntimeError, OSError, pkcs11.PKCS11Error) as exc:
                raise HsmError(f"cannot load the PKCS#11 module {module}: {exc}") from exc
        return _libs[key]


def _raw_public(point: bytes) -> bytes:
    """CKA_EC_POINT of an Edwards key: the 32 raw bytes, DER-wrapped as an OCTET STRING (04 20 ..)
    by most modules (SoftHSM2 included), bare by some."""
    if len(point) == 34 and point[:2] == b"\x04\x20":
        return point[2:]
    if len(point) == 32:
        return point
    raise HsmError(f"unexpected Ed25519 public key encoding from the token ({len(point)} bytes)")


@dataclass
class Pkcs11Signer:
    module: str
    token_label: str
    pin: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Pkcs11Signer:
        if not settings.pkcs11_module or not settings.pkcs11_token_label:
            raise HsmError("CUSTODY_PKCS11_MODULE and CUSTODY_PKCS11_TOKEN_LABEL are required for pkcs11")
        pin = settings.pkcs11_pin.get_secret_value()
        return cls(settings.pkcs11_module, settings.pkcs11_token_label, pin)

    @contextmanager
    def _session(self, rw: bool = False) -> Iterator[Any]:
        try:
            token = _lib(self.module).get_token(token_label=self.token_label)
            with token.open(rw=rw, user_pin=self.pin) as session:
                yield session
        except pkcs11.PKCS11Error as exc:
            raise HsmError(f"PKCS#11 token {self.token_label!r}: {type(exc).__name__} {exc}") from exc

    def _public_keys(self, session: Any) -> dict[str, tuple[Any, bytes]]:
        """key id -> (CKA_ID, raw public key) of our key pairs in the token."""
        from archive.signing import key_id_for

        found = {}
        ours = {
            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
            Attribute.KEY_TYPE: KeyType.EC_EDWARDS,
            Attribute.LABEL: LABEL,
        }
        for obj in session.get_objects(ours):
            raw = _raw_public(bytes(obj[Attribute.EC_POINT]))
            found[key_id_for(Ed25519PublicKey.from_public_bytes(raw))] = (obj[Attribute.ID], raw)
        return found

    def has(self, key_id: str) -> bool:
        with self._session() as session:
            return key_id in self._public_keys(session)

    def generate(self) -> Ed25519PublicKey:
        """A new key pair in the token; returns its public key."""
        with self._session(rw=True) as session:
            params = session.create_domain_parameters(
                KeyType.EC_EDWARDS,
                {Attribute.EC_PARAMS: encode_named_curve_parameters(ED25519_OID)},
                local=True,
            )
            pub, _ = params.generate_keypair(
                mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                store=True,
                label=LABEL,
                id=secrets.token_bytes(16),
                private_template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                },
            )
            return Ed25519PublicKey.from_public_bytes(_raw_public(bytes(pub[Attribute.EC_POINT])))

    def sign(self, key_id: str, data: bytes) -> bytes:
        with self._session() as session:
            pair = self._public_keys(session).get(key_id)
            if pair is None:
                raise HsmError(f"signing key {key_id} is not in PKCS#11 token {self.token_label!r}")
            private = session.get_key(
                object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC_EDWARDS, id=pair[0]
            )
            signature: bytes = private.sign(data, mechanism=Mechanism.EDDSA)
            return signature

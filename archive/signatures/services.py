"""Register authors' public keys, verify and store their signatures, countersign every version.

The author's signature is made on the author's machine (``custody records sign``) with a private key
the server never sees, so it proves authorship independently of anything the server holds. The
archive's countersignature (the Keyring that signs manifests) proves the version was stored as is.
Verification raises; nothing is stored for a signature that does not verify.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, actor, authorize
from archive.accounts.models import User
from archive.cases import services as cases
from archive.cases.models import TextRecord
from archive.clock import Clock, utcnow
from archive.errors import NotFound, SignatureInvalid
from archive.i18n import _
from archive.signatures.document import document_digest, record_document
from archive.signatures.errors import AlreadySigned, InvalidKey, SignatureRefused
from archive.signatures.models import RecordSignature, SignerKind, UserKey
from archive.signing import Keyring, Signature, key_id_for, public_key_pem, verify_with_public_key

ARCHIVE_SIGNER = "archive"


def load_public_key(pem: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidKey(_("not a PEM public key")) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidKey(_("only Ed25519 public keys are accepted"))
    return key


def register_key(session: Session, user: User, pem: str, *, addr: str = "", clock: Clock = utcnow) -> UserKey:
    authorize(user, Permission.SIGNING_KEY_REGISTER)
    key = load_public_key(pem)
    key_id = key_id_for(key)
    if session.get(UserKey, key_id) is not None:
        raise AlreadySigned(_("key {key_id} is already registered").format(key_id=key_id))
    row = UserKey(
        key_id=key_id, user_name=user.name, public_key_pem=public_key_pem(key), registered_at=clock()
    )
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="signing.key.register",
        subject_type="user",
        subject_id=user.name,
        client_addr=addr,
        clock=clock,
        details={"key_id": key_id},
    )
    return row


def my_keys(session: Session, user: User) -> list[UserKey]:
    authorize(user, Permission.SIGNING_KEY_REGISTER)
    return list(
        session.exec(
            select(UserKey).where(UserKey.user_name == user.name).order_by(col(UserKey.registered_at))
        )
    )


def _version(session: Session, user: User, case_id: str, record_id: str, version: int) -> TextRecord:
    for r in cases.record_versions(session, user, case_id, record_id):
        if r.version == version:
            return r
    raise NotFound(_("record {rid} has no version {v}").format(rid=record_id[:40], v=version))


def countersign(
    session: Session, keyring: Keyring, rec: TextRecord, *, clock: Clock = utcnow
) -> RecordSignature:
    """The archive's signature on a version (called when the version is written)."""
    doc = record_document(rec)
    sig = keyring.sign(doc)
    row = RecordSignature(
        case_id=rec.case_id,
        record_id=rec.record_id,
        version=rec.version,
        kind=SignerKind.ARCHIVE,
        signer=ARCHIVE_SIGNER,
        key_id=sig.key_id,
        signature_b64=sig.signature_b64,
        document_sha256=document_digest(doc),
        signed_at=clock(),
    )
    session.add(row)
    session.flush()
    return row


def submit_signature(
    session: Session,
    user: User,
    case_id: str,
    record_id: str,
    version: int,
    *,
    key_id: str,
    signature_b64: str,
    addr: str = "",
    clock: Clock = utcnow,
) -> RecordSignature:
    """Verify the caller's signature of one version with the caller's registered key, then store it.
    A signature that does not verify is refused (422) and leaves nothing behind but the refusal event,
    which the caller's transaction rolls back with everything else."""
    rec = _version(session, user, case_id, record_id, version)
    key = session.get(UserKey, key_id)
    if key is None or key.user_name != user.name or key.revoked_at is not None:
        raise SignatureRefused(
            _("key {key_id} is not a registered key of {user}").format(key_id=key_id[:32], user=user.name)
        )
    doc = record_document(rec)
    try:
        base64.b64decode(signature_b64, validate=True)
        verify_with_public_key(load_public_key(key.public_key_pem), doc, Signature(key_id, signature_b64))
    except (SignatureInvalid, ValueError) as exc:
        raise SignatureRefused(
            _(
                "the signature does not verify for record {rid} version {v} with key {key_id}: "
                "it was made over other content or with another key"
            ).format(rid=record_id, v=version, key_id=key_id)
        ) from exc
    row = RecordSignature(
        case_id=rec.case_id,
        record_id=rec.record_id,
        version=rec.version,
        kind=SignerKind.AUTHOR,
        signer=actor(user),
        key_id=key_id,
        signature_b64=signature_b64,
        document_sha256=document_digest(doc),
        signed_at=clock(),
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except DBIntegrityError as exc:
        raise AlreadySigned(
            _("you already signed this version with key {key_id}").format(key_id=key_id)
        ) from exc
    events.record(
        session,
        actor=actor(user),
        action="record.sign",
        subject_type="record",
        subject_id=record_id,
        client_addr=addr,
        clock=clock,
        details={
            "case": rec.case_id,
            "version": version,
            "key_id": key_id,
            "document_sha256": row.document_sha256,
        },
    )
    return row


def signatures(session: Session, user: User, case_id: str, record_id: str) -> list[RecordSignature]:
    cases.record_versions(session, user, case_id, record_id)  # visibility, 404 otherwise
    return list(
        session.exec(
            select(RecordSignature)
            .where(RecordSignature.record_id == record_id)
            .order_by(col(RecordSignature.version), col(RecordSignature.id))
        )
    )


def signatures_of_case(session: Session, user: User, case_id: str) -> list[RecordSignature]:
    case = cases.get_case(session, user, case_id)  # 404 for a case the caller cannot see
    return case_signatures(session, case.id)


def case_signatures(session: Session, case_id: str) -> list[RecordSignature]:
    """For the export (the caller has already checked access to the case)."""
    return list(
        session.exec(
            select(RecordSignature)
            .where(RecordSignature.case_id == case_id)
            .order_by(col(RecordSignature.record_id), col(RecordSignature.version), col(RecordSignature.id))
        )
    )


def signer_keys(session: Session, key_ids: list[str]) -> list[UserKey]:
    if not key_ids:
        return []
    return list(session.exec(select(UserKey).where(col(UserKey.key_id).in_(key_ids))))

"""Users' signing keys and the signatures on text-record versions."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ClientAddr, CurrentUser, SessionDep
from archive.signatures import services as signatures
from archive.signatures.models import (
    KeyRegister,
    RecordSignaturePublic,
    SignatureSubmit,
    UserKeyPublic,
)

router = APIRouter(prefix="/api/v1", tags=["signatures"])


@router.post("/me/signing-keys", response_model=UserKeyPublic, status_code=201)
def register_key(
    body: KeyRegister, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> UserKeyPublic:
    """Register your Ed25519 public key (PEM); its private half stays on your machine."""
    return UserKeyPublic.model_validate(
        signatures.register_key(session, user, body.public_key_pem, addr=addr)
    )


@router.get("/me/signing-keys", response_model=list[UserKeyPublic])
def my_keys(session: SessionDep, user: CurrentUser) -> list[UserKeyPublic]:
    return [UserKeyPublic.model_validate(k) for k in signatures.my_keys(session, user)]


@router.post(
    "/cases/{case_id}/records/{record_id}/versions/{version}/signatures",
    response_model=RecordSignaturePublic,
    status_code=201,
)
def sign_version(
    case_id: str,
    record_id: str,
    version: int,
    body: SignatureSubmit,
    session: SessionDep,
    user: CurrentUser,
    addr: ClientAddr,
) -> RecordSignaturePublic:
    """Store your signature of one record version (made by ``custody records sign``). 422 and nothing
    stored when it does not verify with your registered key."""
    row = signatures.submit_signature(
        session,
        user,
        case_id,
        record_id,
        version,
        key_id=body.key_id,
        signature_b64=body.signature,
        addr=addr,
    )
    return RecordSignaturePublic.model_validate(row.model_dump())


@router.get("/cases/{case_id}/records/{record_id}/signatures", response_model=list[RecordSignaturePublic])
def list_signatures(
    case_id: str, record_id: str, session: SessionDep, user: CurrentUser
) -> list[RecordSignaturePublic]:
    """Who signed which version: the authors, and the archive's countersignature on every version."""
    return [
        RecordSignaturePublic.model_validate(s.model_dump())
        for s in signatures.signatures(session, user, case_id, record_id)
    ]


@router.get("/cases/{case_id}/signatures", response_model=list[RecordSignaturePublic])
def case_signatures(case_id: str, session: SessionDep, user: CurrentUser) -> list[RecordSignaturePublic]:
    """Every signature on every record version of a case (the review page shows who signed what)."""
    return [
        RecordSignaturePublic.model_validate(s.model_dump())
        for s in signatures.signatures_of_case(session, user, case_id)
    ]

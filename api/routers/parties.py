"""Parties of cases (执法对象) and the party view."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api.deps import ClientAddr, CurrentUser, SessionDep
from archive.config import get_settings
from archive.parties import services as parties
from archive.parties.crypto import IdCipher, cipher_from_settings
from archive.parties.models import IdDocType, PartyCreate, PartyKind, PartyPublic, PartyView

router = APIRouter(prefix="/api/v1", tags=["parties"])


def get_cipher(request: Request) -> IdCipher:
    cipher: IdCipher | None = getattr(request.app.state, "party_cipher", None)
    if cipher is None:
        cipher = cipher_from_settings(get_settings())
        request.app.state.party_cipher = cipher
    return cipher


CipherDep = Annotated[IdCipher, Depends(get_cipher)]


@router.post("/cases/{case_id}/parties", response_model=PartyPublic, status_code=201)
def add_party(
    case_id: str,
    body: PartyCreate,
    session: SessionDep,
    user: CurrentUser,
    cipher: CipherDep,
    addr: ClientAddr,
) -> PartyPublic:
    """Name a person or organisation in a case; its identity number is stored encrypted."""
    party, role = parties.add_party(session, user, case_id, body, cipher, addr=addr)
    return parties.public(session, user, party, cipher, role=role, addr=addr)


@router.get("/cases/{case_id}/parties", response_model=list[PartyPublic])
def case_parties(
    case_id: str, session: SessionDep, user: CurrentUser, cipher: CipherDep, addr: ClientAddr
) -> list[PartyPublic]:
    """The case's parties; identity numbers masked unless the caller's role needs them."""
    return parties.case_parties(session, user, case_id, cipher, addr=addr)


@router.get("/parties", response_model=list[PartyPublic])
def find_parties(
    session: SessionDep,
    user: CurrentUser,
    cipher: CipherDep,
    addr: ClientAddr,
    kind: PartyKind,
    id_doc_type: IdDocType,
    id_number: Annotated[str, Query(min_length=1, max_length=64)],
) -> list[PartyPublic]:
    """Find a party by identity number (compared through a keyed index, never in clear)."""
    return parties.find_parties(
        session, user, cipher, kind=kind, id_doc_type=id_doc_type, id_number=id_number, addr=addr
    )


@router.get("/parties/{party_id}", response_model=PartyView)
def party_view(
    party_id: str,
    session: SessionDep,
    user: CurrentUser,
    cipher: CipherDep,
    addr: ClientAddr,
    purpose: Annotated[str | None, Query(max_length=2000)] = None,
) -> PartyView:
    """Every case, record and recording of one party (restricted ones the caller holds a grant for
    with ``purpose``)."""
    return parties.party_view(session, user, party_id, cipher, addr=addr, purpose=purpose)

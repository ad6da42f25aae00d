"""Name parties in cases, list them (masked for roles that do not need the numbers), and the party view.

Identity numbers never appear in the custody log or in an error message: events carry the masked form.
"""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, actor, authorize, can
from archive.accounts.models import User
from archive.cases import services as cases
from archive.cases.models import Case, CaseMedia, LinkSource
from archive.i18n import _
from archive.media.models import Media
from archive.parties.crypto import IdCipher, mask, normalise
from archive.parties.errors import InvalidParty, PartyNotFound
from archive.parties.models import (
    LABELS_ZH,
    CaseParty,
    IdDocType,
    Party,
    PartyCasePublic,
    PartyCreate,
    PartyPublic,
    PartyRecordingPublic,
    PartyRecordPublic,
    PartyRole,
    PartyView,
)
from archive.restricted import services as restricted
from archive.restricted.models import SubjectKind

_RESIDENT_ID = re.compile(r"^\d{17}[\dX]$")
_CREDIT_CODE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")
_GENERIC = re.compile(r"^[0-9A-Z]{4,40}$")
_CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def resident_id_valid(number: str) -> bool:
    """GB 11643: 17 digits and an ISO 7064 MOD 11-2 check character."""
    if not _RESIDENT_ID.match(number):
        return False
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(number[:17]))
    return "10X98765432"[total % 11] == number[17]


def credit_code_valid(number: str) -> bool:
    """GB 32100: 18 characters, the last a check character (weights 3^i mod 31)."""
    if not _CREDIT_CODE.match(number):
        return False
    total = sum(_CREDIT_CHARS.index(c) * (3**i % 31) for i, c in enumerate(number[:17]))
    return _CREDIT_CHARS[(31 - total % 31) % 31] == number[17]


def _check(data: PartyCreate) -> str:
    number = normalise(data.id_number)
    if not data.name.strip():
        raise InvalidParty(_("a party needs a name"))
    if data.id_doc_type is IdDocType.RESIDENT_ID and not resident_id_valid(number):
        raise InvalidParty(_("not a valid resident identity number (17 digits and a check character)"))
    if data.id_doc_type is IdDocType.CREDIT_CODE and not credit_code_valid(number):
        raise InvalidParty(
            _("not a valid unified social credit code (18 characters, the last a check character)")
        )
    if not _GENERIC.match(number) and data.id_doc_type not in {IdDocType.RESIDENT_ID, IdDocType.CREDIT_CODE}:
        raise InvalidParty(_("an identity document number has 4 to 40 letters or digits"))
    return number


def public(
    session: Session,
    user: User,
    party: Party,
    cipher: IdCipher,
    *,
    role: PartyRole | None = None,
    addr: str = "",
) -> PartyPublic:
    """The party as ``user`` may see it: the number in clear only with PARTY_ID_READ (logged)."""
    clear = can(user, Permission.PARTY_ID_READ)
    if clear:
        number = cipher.decrypt(party.id_number_enc, bound_to=f"party:{party.id}:id_number")
        events.record(
            session,
            actor=actor(user),
            action="party.id.read",
            subject_type="party",
            subject_id=party.id,
            client_addr=addr,
        )
    else:
        number = "*" * max(party.id_number_len - len(party.id_number_last), 0) + party.id_number_last
    return PartyPublic(
        id=party.id,
        kind=party.kind,
        name=party.name,
        id_doc_type=party.id_doc_type,
        id_number=number,
        id_number_masked=not clear,
        role=role,
        labels_zh={k: LABELS_ZH[v] for k, v in (("kind", party.kind), ("id_doc_type", party.id_doc_type))}
        | ({"role": LABELS_ZH[role]} if role else {}),
    )


def add_party(
    session: Session, user: User, case_id: str, data: PartyCreate, cipher: IdCipher, *, addr: str = ""
) -> tuple[Party, PartyRole]:
    """Name a party in a case. The same person or organisation (same kind, document type and number)
    is one party across cases, so the party view finds all of its cases."""
    case = cases.get_case(session, user, case_id)  # 404 first: a case you cannot see does not exist
    authorize(user, Permission.PARTY_WRITE)
    cases.require_writer(session, user, case)
    number = _check(data)
    index = cipher.blind_index(f"{data.kind}:{data.id_doc_type}:{number}")
    party = session.exec(select(Party).where(Party.id_number_index == index)).first()
    created = party is None
    if party is None:
        party = Party(
            kind=data.kind,
            name=data.name.strip(),
            id_doc_type=data.id_doc_type,
            id_number_enc="",
            id_number_index=index,
            id_number_last=number[-4:] if len(number) > 6 else number[-1:],
            id_number_len=len(number),
            created_by=actor(user),
        )
        party.id_number_enc = cipher.encrypt(number, bound_to=f"party:{party.id}:id_number")
        session.add(party)
        session.flush()
    link = session.get(CaseParty, (case.id, party.id))
    if link is not None:
        raise InvalidParty(
            _("party {name} is already named in case {number}").format(name=party.name, number=case.number)
        )
    session.add(CaseParty(case_id=case.id, party_id=party.id, role=data.role, added_by=actor(user)))
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="party.add",
        subject_type="party",
        subject_id=party.id,
        client_addr=addr,
        details={
            "case": case.id,
            "role": data.role,
            "kind": data.kind,
            "new_party": created,
            "id_doc_type": data.id_doc_type,
            "id_number": mask(number),
        },
    )
    return party, data.role


def case_parties(
    session: Session, user: User, case_id: str, cipher: IdCipher, *, addr: str = ""
) -> list[PartyPublic]:
    case = cases.get_case(session, user, case_id)
    rows = session.exec(
        select(Party, CaseParty)
        .join(CaseParty, col(CaseParty.party_id) == col(Party.id))
        .where(CaseParty.case_id == case.id)
        .order_by(col(CaseParty.added_at), col(Party.id))
    ).all()
    return [public(session, user, p, cipher, role=cp.role, addr=addr) for p, cp in rows]


def find_parties(
    session: Session,
    user: User,
    cipher: IdCipher,
    *,
    kind: str,
    id_doc_type: str,
    id_number: str,
    addr: str = "",
) -> list[PartyPublic]:
    """Find a party by its identity number (through the blind index; the number is not logged)."""
    authorize(user, Permission.PARTY_READ)
    index = cipher.blind_index(f"{kind}:{id_doc_type}:{normalise(id_number)}")
    rows = session.exec(select(Party).where(Party.id_number_index == index)).all()
    events.record(
        session,
        actor=actor(user),
        action="party.search",
        subject_type="query",
        subject_id=str(len(rows)),
        client_addr=addr,
        details={"id_number": mask(normalise(id_number))},
    )
    return [public(session, user, p, cipher, addr=addr) for p in rows]


def party_view(
    session: Session,
    user: User,
    party_id: str,
    cipher: IdCipher,
    *,
    addr: str = "",
    purpose: str | None = None,
) -> PartyView:
    """Every case naming the party, every record of those cases (latest versions) and every recording
    linked to them, for the party view (logged: it is a read of evidence). Restricted items the reader
    holds a grant for are listed when ``purpose`` is stated, each a ``restricted.read`` with it."""
    authorize(user, Permission.PARTY_READ)
    party = session.get(Party, party_id)
    if party is None:
        raise PartyNotFound(_("no party {id}").format(id=party_id[:40]))
    links = session.exec(
        select(CaseParty, Case)
        .join(Case, col(Case.id) == col(CaseParty.case_id))
        .where(CaseParty.party_id == party.id, cases.visible_cases_clause(user))
        .order_by(col(Case.created_at))
    ).all()
    case_rows = [
        PartyCasePublic(case_id=c.id, number=c.number, title=c.title, role=cp.role) for cp, c in links
    ]
    recs: list[PartyRecordPublic] = []
    recordings: list[PartyRecordingPublic] = []
    for _cp, c in links:
        for r in cases.records(session, user, c.id, purpose=purpose):
            recs.append(
                PartyRecordPublic(
                    case_id=c.id,
                    record_id=r.record_id,
                    version=r.version,
                    title=r.title,
                    doc_kind=r.doc_kind,
                    start=r.occurred_from,
                    end=r.occurred_to,
                )
            )
        media_ids = select(CaseMedia.media_id).where(
            CaseMedia.case_id == c.id,
            col(CaseMedia.unlinked_at).is_(None),
            CaseMedia.source != LinkSource.ATTACHMENT,
        )
        for m in session.exec(
            select(Media)
            .where(
                col(Media.id).in_(media_ids),
                restricted.listing_clause(user, SubjectKind.MEDIA, Media.id, purpose),
            )
            .order_by(col(Media.recorded_at))
        ):
            span = cases.corrected_span(m)
            recordings.append(
                PartyRecordingPublic(
                    case_id=c.id,
                    media_id=m.id,
                    file_name=m.file_name,
                    officer=m.officer_badge,
                    start=span[0] if span else None,
                    end=span[1] if span else None,
                )
            )
    for kind, ids in (
        (SubjectKind.RECORD, [r.record_id for r in recs]),
        (SubjectKind.MEDIA, [r.media_id for r in recordings]),
    ):
        restricted.log_listed(session, user, kind, ids, purpose, via="party", addr=addr)
    events.record(
        session,
        actor=actor(user),
        action="party.view",
        subject_type="party",
        subject_id=party.id,
        client_addr=addr,
        details={"cases": len(case_rows)},
    )
    return PartyView(
        party=public(session, user, party, cipher, addr=addr),
        cases=case_rows,
        records=recs,
        recordings=recordings,
    )

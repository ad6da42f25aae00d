"""The catalogue's versions in the database: the one in force, a given version, installing one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, actor, authorize
from archive.accounts.models import User
from archive.clock import Clock, utcnow
from archive.errors import IntegrityError
from archive.i18n import _
from archive.legal.catalogue import (
    Catalogue,
    default_catalogue,
    parse_catalogue,
)
from archive.legal.errors import InvalidSubmission
from archive.legal.models import (
    CataloguePublic,
    LegalCatalogueVersion,
)

# --------------------------------------------------------------------------- catalogue


def _catalogue_row(session: Session, version: int | None = None) -> LegalCatalogueVersion | None:
    stmt = select(LegalCatalogueVersion)
    if version is None:
        stmt = stmt.order_by(col(LegalCatalogueVersion.version).desc()).limit(1)
    else:
        stmt = stmt.where(LegalCatalogueVersion.version == version)
    return session.exec(stmt).first()


def current_catalogue(session: Session) -> Catalogue:
    """The catalogue in force: the newest installed version, else the shipped default."""
    row = _catalogue_row(session)
    return parse_catalogue(row.body) if row is not None else default_catalogue()


def catalogue_version(session: Session, version: int) -> Catalogue:
    """The catalogue a submission was classified under (answers are checked against its checklist)."""
    row = _catalogue_row(session, version)
    if row is not None:
        return parse_catalogue(row.body)
    shipped = default_catalogue()
    if shipped.version == version:
        return shipped
    raise IntegrityError(f"legal review catalogue version {version} is not stored")


def catalogue_public(session: Session, user: User) -> CataloguePublic:
    authorize(user, Permission.LEGAL_READ)
    row = _catalogue_row(session)
    if row is None:
        c = default_catalogue()
        return CataloguePublic(
            version=c.version,
            body=c.to_json(),
            created_by="system:default",
            reason="shipped",
            created_at=None,
        )
    return CataloguePublic.model_validate(row.model_dump())


def set_catalogue(
    session: Session, user: User, body: dict[str, Any], reason: str, *, clock: Clock = utcnow, addr: str = ""
) -> LegalCatalogueVersion:
    """Install the next catalogue version (the whole document, with a reason). Submissions already made
    keep the version and rule that classified them."""
    authorize(user, Permission.LEGAL_CATALOGUE_SET)
    reason = reason.strip()
    if not reason:
        raise InvalidSubmission(_("a new catalogue version needs a reason"))
    latest = session.exec(select(func.max(LegalCatalogueVersion.version))).one()
    version = max(int(latest or 0), default_catalogue().version) + 1
    catalogue = parse_catalogue({**body, "version": version})
    row = LegalCatalogueVersion(
        version=version, body=catalogue.to_json(), created_by=user.name, reason=reason, created_at=clock()
    )
    session.add(row)
    session.flush()
    events.record(
        session,
        actor=actor(user),
        action="legal.catalogue.set",
        subject_type="legal-catalogue",
        subject_id=str(version),
        client_addr=addr,
        details={"reason": reason, "rules": [r.id for r in catalogue.rules]},
        clock=clock,
    )
    return row

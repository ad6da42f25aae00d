"""Advance documents (事前公开): bodies, duties, powers, legal basis, procedures, remedy channels,
random-inspection lists, discretion standards, service guides.

Each document is known by a ``key`` and kept in versions. A publisher writes a version (a draft) and
approves it by naming its SHA-256, which releases it and supersedes the version the public saw before:
"公开内容由负责行政执法工作的人员拟定后,按规定报审公开" (seed 000), and the correction mechanism
(审核、纠错机制) is simply the next version.
"""

from __future__ import annotations

import re

from sqlalchemy import func
from sqlmodel import Session, col, select

from archive.access import Permission, authorize
from archive.accounts.models import User
from archive.clock import Clock, utcnow
from archive.context import Dispatcher
from archive.errors import InvalidInput, NotFound
from archive.i18n import _
from archive.publicity import webhooks
from archive.publicity.errors import DigestMismatch, WrongState
from archive.publicity.models import DOCUMENT_ZH, DocumentKind, DocumentPublic, DocumentState, PublicDocument
from archive.publicity.services import log, sha256_json

KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MAX_BODY = 200_000


def digest(title: str, body: str) -> str:
    return sha256_json({"title": title, "body": body})


def write(
    session: Session,
    user: User,
    key: str,
    kind: DocumentKind,
    title: str,
    body: str,
    *,
    note: str = "",
    addr: str = "",
    clock: Clock = utcnow,
) -> PublicDocument:
    authorize(user, Permission.PUBLISH)
    if not KEY.match(key):
        raise InvalidInput(_("a document key is lower-case letters, digits and dashes"))
    title, body = title.strip(), body.strip()
    if not title or not body:
        raise InvalidInput(_("a document needs a title and a body"))
    if len(body) > MAX_BODY:
        raise InvalidInput(_("the body is longer than {n} characters").format(n=MAX_BODY))
    latest = session.exec(select(func.max(PublicDocument.version)).where(PublicDocument.key == key)).one()
    doc = PublicDocument(
        key=key,
        version=int(latest or 0) + 1,
        kind=kind,
        title=title,
        body=body,
        note=note.strip(),
        sha256=digest(title, body),
        created_by=user.name,
        created_at=clock(),
    )
    session.add(doc)
    session.flush()
    log(
        session,
        user,
        "publicity.document.write",
        "document",
        f"{key}@{doc.version}",
        addr=addr,
        clock=clock,
        kind=kind,
        sha256=doc.sha256,
        note=doc.note,
    )
    return doc


def get_version(session: Session, key: str, version: int) -> PublicDocument:
    doc = session.exec(
        select(PublicDocument).where(PublicDocument.key == key, PublicDocument.version == version)
    ).first()
    if doc is None:
        raise NotFound(_("no document {key} version {version}").format(key=key, version=version))
    return doc


def approve(
    session: Session,
    user: User,
    key: str,
    version: int,
    sha256: str,
    *,
    dispatcher: Dispatcher | None = None,
    addr: str = "",
    clock: Clock = utcnow,
) -> tuple[PublicDocument, PublicDocument | None, list[str]]:
    """Release ``version``. Returns it, the version it superseded (if any) and the push queued."""
    authorize(user, Permission.PUBLISH)
    doc = get_version(session, key, version)
    if doc.state is not DocumentState.DRAFT:
        raise WrongState(
            _("document {key} version {version} is {state}, not a draft").format(
                key=key, version=version, state=doc.state
            )
        )
    if sha256 != doc.sha256:
        raise DigestMismatch(
            _("the approval names {given}, but version {version} has SHA-256 {stored}").format(
                given=sha256[:64], version=version, stored=doc.sha256
            )
        )
    previous = session.exec(
        select(PublicDocument).where(
            PublicDocument.key == key, PublicDocument.state == DocumentState.PUBLISHED
        )
    ).first()
    if previous is not None:
        previous.state = DocumentState.SUPERSEDED
        session.add(previous)
    doc.state = DocumentState.PUBLISHED
    doc.approved_by = user.name
    doc.approved_at = clock()
    session.add(doc)
    session.flush()
    log(
        session,
        user,
        "publicity.document.publish",
        "document",
        f"{key}@{version}",
        addr=addr,
        clock=clock,
        sha256=doc.sha256,
        supersedes=previous.version if previous else None,
    )
    from archive.publicity.public import document_entry

    sent = webhooks.enqueue(
        session, "document.published", key, document_entry(doc), dispatcher=dispatcher, clock=clock
    )
    return doc, previous, [sent.id] if sent else []


def versions(session: Session, user: User, key: str | None = None) -> list[PublicDocument]:
    authorize(user, Permission.PUBLICITY_READ)
    stmt = select(PublicDocument)
    if key:
        stmt = stmt.where(PublicDocument.key == key)
    return list(session.exec(stmt.order_by(col(PublicDocument.key), col(PublicDocument.version))))


def published(session: Session, key: str | None = None) -> list[PublicDocument]:
    """The versions the public sees (one per key)."""
    stmt = select(PublicDocument).where(PublicDocument.state == DocumentState.PUBLISHED)
    if key:
        stmt = stmt.where(PublicDocument.key == key)
    return list(session.exec(stmt.order_by(col(PublicDocument.kind), col(PublicDocument.key))))


def to_public(doc: PublicDocument) -> DocumentPublic:
    return DocumentPublic.model_validate({**doc.model_dump(), "kind_label": DOCUMENT_ZH[doc.kind]})

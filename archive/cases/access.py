"""Who sees and changes what in cases (need-to-know on top of ``archive.access``), and the custody
event every case change writes in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, exists, false, true
from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, actor, can
from archive.accounts.models import User
from archive.cases.errors import CaseClosed, CaseNotFound
from archive.cases.models import (
    Case,
    CaseMedia,
    CaseReviewer,
    CaseStatus,
)
from archive.clock import Clock
from archive.errors import Forbidden
from archive.i18n import _
from archive.legal import visibility as legal_visibility
from archive.media.models import Media, MediaState

# Who sees what (issue 3, section 8) is said in archive.access: CASE_READ_ALL and MEDIA_READ_ALL
# (auditors read everything, they audit the archive as a whole, but change nothing), CASE_ADMIN
# (open cases, assign reviewers), and the need-to-know permissions below.
# Items that never became an archived original of their own: nothing to review or link.
UNLINKABLE = frozenset({MediaState.QUARANTINED, MediaState.DUPLICATE})


# --------------------------------------------------------------------------- visibility


def visible_cases_clause(user: User) -> ColumnElement[bool]:
    if can(user, Permission.CASE_READ_ALL):
        return true()
    if can(user, Permission.CASE_READ_ASSIGNED):
        return col(Case.id).in_(select(CaseReviewer.case_id).where(CaseReviewer.user_name == user.name))
    if can(user, Permission.CASE_READ_SUBMITTED):
        return legal_visibility.submitted_cases_clause()
    return false()  # officers work through the dock; cases are read by reviewers and the back office


def visible_media_clause(user: User) -> ColumnElement[bool]:
    """Officers see their own recordings; reviewers see what is linked to a case assigned to them;
    auditors, records managers and admins see everything, linked or not."""
    if can(user, Permission.MEDIA_READ_ALL):
        return true()
    if can(user, Permission.MEDIA_READ_OWN):
        return col(Media.officer_badge) == user.name
    if can(user, Permission.CASE_READ_ASSIGNED):
        linked = (
            select(CaseMedia.media_id)
            .join(CaseReviewer, col(CaseReviewer.case_id) == col(CaseMedia.case_id))
            .where(
                CaseReviewer.user_name == user.name,
                col(CaseMedia.unlinked_at).is_(None),
                col(CaseMedia.pending).is_(False),  # a pending auto-link grants nothing yet
            )
        )
        return col(Media.id).in_(linked)
    if can(user, Permission.CASE_READ_SUBMITTED):
        return legal_visibility.submitted_media_clause()
    return false()


def media_visible(session: Session, user: User, item: Media) -> bool:
    if can(user, Permission.MEDIA_READ_ALL):
        return True
    if can(user, Permission.MEDIA_READ_OWN):
        return item.officer_badge == user.name
    return (
        session.exec(select(Media.id).where(Media.id == item.id, visible_media_clause(user))).first()
        is not None
    )


def linked_clause(linked: bool) -> ColumnElement[bool]:
    open_link = exists().where(col(CaseMedia.media_id) == col(Media.id), col(CaseMedia.unlinked_at).is_(None))
    return open_link if linked else ~open_link


def get_case(session: Session, user: User, case_id: str) -> Case:
    case = session.exec(select(Case).where(Case.id == case_id, visible_cases_clause(user))).first()
    if case is None:
        raise CaseNotFound(_("no case {case_id}").format(case_id=case_id))
    return case


def require_writer(session: Session, user: User, case: Case) -> None:
    """Admins, records managers and the reviewers assigned to the case add records and links; to an
    open case only (a closed case is read-only until reopened, which is logged as ``case.update``)."""
    if case.status == CaseStatus.CLOSED and (
        can(user, Permission.CASE_ADMIN) or session.get(CaseReviewer, (case.id, user.name)) is not None
    ):
        raise CaseClosed(_("case {case} is closed: reopen it first").format(case=case.number))
    if can(user, Permission.CASE_ADMIN):
        return
    if (
        can(user, Permission.CASE_WRITE_ASSIGNED)
        and session.get(CaseReviewer, (case.id, user.name)) is not None
    ):
        return
    raise Forbidden(_("role {role} may not change case {number}").format(role=user.role, number=case.number))


def log_change(
    session: Session,
    user: User,
    action: str,
    subject_type: str,
    subject_id: str,
    addr: str,
    clock: Clock,
    **details: Any,
) -> None:
    events.record(
        session,
        actor=actor(user),
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        client_addr=addr,
        details=details,
        clock=clock,
    )


ATTACHMENT_DEVICE = "case-attachment"  # the "device" of scans and PDFs uploaded to a case

"""Need-to-know for the legal office: legal reviewers and approvers see the cases submitted for
legal review (and the media linked to them), nothing else. Imported by the case visibility rules."""

from __future__ import annotations

from sqlalchemy import ColumnElement
from sqlmodel import col, select

from archive.accounts.models import Role
from archive.cases.models import Case, CaseMedia
from archive.legal.models import LegalSubmission
from archive.media.models import Media

LEGAL_ROLES = frozenset({Role.LEGAL_REVIEWER, Role.APPROVER})


def submitted_cases_clause() -> ColumnElement[bool]:
    return col(Case.id).in_(select(LegalSubmission.case_id))


def submitted_media_clause() -> ColumnElement[bool]:
    linked = (
        select(CaseMedia.media_id)
        .join(LegalSubmission, col(LegalSubmission.case_id) == col(CaseMedia.case_id))
        .where(col(CaseMedia.unlinked_at).is_(None))
    )
    return col(Media.id).in_(linked)

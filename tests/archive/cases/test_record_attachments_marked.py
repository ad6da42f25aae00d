"""A record's attachments as a reader sees them (issue 13, restricted records): a marked attachment is
left out of every listing of the record, id included, unless the reader holds a grant and states a
purpose, as for the attachment itself."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from archive.accounts import services as accounts
from archive.accounts.models import Role
from archive.cases import services as cases
from archive.cases.models import CaseKind, DocumentKind, Stage
from archive.db import session_scope
from archive.restricted import services as restricted
from archive.restricted.models import GrantCreate, MarkCreate, Sensitivity, SubjectKind
from tests.case_factories import T, media_row


def test_a_marked_attachment_is_listed_only_for_a_grantee_with_a_purpose(engine: Engine) -> None:
    with session_scope(engine) as s:
        clerk, _ = accounts.add_user(s, "clerk", Role.RECORDS_MANAGER)
        accounts.add_user(s, "granted", Role.REVIEWER)
        accounts.add_user(s, "plain", Role.REVIEWER)
    scan = media_row(engine, recorded_at=None, duration_s=None, kind="document")
    other = media_row(engine, recorded_at=None, duration_s=None, kind="document")
    with session_scope(engine) as s:
        case_id = cases.create_case(
            s, clerk, cases.CaseInput("2024-7", "Theft", CaseKind.CRIMINAL, reviewers=["granted", "plain"])
        ).id
        cases.add_record(
            s,
            clerk,
            case_id,
            cases.RecordInput(
                stage=Stage.INVESTIGATION,
                doc_kind=DocumentKind.REPORT,
                author="clerk",
                occurred_from=T,
                occurred_to=T + timedelta(minutes=5),
                body="证人证言",
                attachments=[scan, other],
            ),
        )
        restricted.mark(
            s,
            clerk,
            MarkCreate(
                subject_kind=SubjectKind.MEDIA,
                subject_id=scan,
                sensitivity=Sensitivity.PRIVACY,
                reason="举报人信息",
            ),
        )
        restricted.grant(
            s,
            clerk,
            GrantCreate(user_name="granted", subject_kind=SubjectKind.MEDIA, subject_id=scan, reason="承办"),
        )

    def shown(user_name: str, purpose: str | None) -> tuple[list[str], list[str]]:
        with session_scope(engine) as s:
            user = accounts.active_user(s, user_name)
            assert user is not None
            listed = cases.read_records(s, user, case_id, purpose=purpose)
            timeline = cases.timeline(s, user, case_id, purpose=purpose)
            recs = [i for i in timeline.items if getattr(i, "record_id", None)]
            return listed[0].attachments, recs[0].attachments

    assert shown("plain", "核对证据") == ([other], [other])
    assert shown("granted", None) == ([other], [other])
    assert shown("granted", "核对证据") == ([scan, other], [scan, other])

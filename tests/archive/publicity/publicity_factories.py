"""Factories for publicity tests: users, a case with a decision document, roster entries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from archive.accounts import services as accounts
from archive.accounts.models import Role, User
from archive.cases import services as cases
from archive.cases.models import CaseKind, DocumentKind, Stage
from archive.db import session_scope
from archive.legal import services as legal
from archive.publicity import decisions, roster
from archive.publicity.models import Decision, DecisionCategory, PartyKind
from archive.publicity.redaction import id_check_digit

ID_NUMBER = "11010519491231002" + id_check_digit("11010519491231002")
PARTY = "张三"
DECISION_TEXT = (
    f"行政处罚决定书\n当事人：{PARTY}，男，身份证号码{ID_NUMBER}，住址：北京市朝阳区建国路88号2号楼301室，"
    "联系电话13812345678。\n"
    "经查，当事人于2025年3月1日驾驶京A12345号小型汽车违反规定停放。证人李红，女，在场。\n"
    "以上事实有现场检查笔录、执法记录仪视频为证。\n"
    "根据《中华人民共和国道路交通安全法》第九十三条，决定给予罚款人民币200元的行政处罚。\n"
    "如不服本决定，可于六十日内申请行政复议，或于六个月内提起行政诉讼。"
)
CONCLUSION = "罚款人民币200元"


def fixed(at: datetime) -> Callable[[], datetime]:
    return lambda: at


def user(session: Session, name: str, role: Role) -> User:
    return accounts.add_user(session, name, role)[0]


def users(engine: Engine) -> dict[str, User]:
    with session_scope(engine) as s:
        out = {
            "admin": user(s, "adm", Role.ADMIN),
            "publisher": user(s, "pub", Role.PUBLISHER),
            "records": user(s, "rm", Role.RECORDS_MANAGER),
            "auditor": user(s, "aud", Role.AUDITOR),
            "reviewer": user(s, "rev", Role.REVIEWER),
            "officer": user(s, "0815", Role.OFFICER),
        }
    return out


def roster_entry(
    session: Session,
    admin: User,
    officer: str = "0815",
    *,
    name: str = "赵刚",
    certificate_no: str | None = None,
    valid_from: date = date(2020, 1, 1),
    valid_to: date = date(2030, 12, 31),
) -> Any:
    return roster.add_entry(
        session,
        admin,
        roster.RosterInput(
            officer=officer,
            name=name,
            unit="某某县公安局交警大队",
            post="民警",
            badge_no=f"J{officer}",
            certificate_no=certificate_no or f"C-{officer}",
            category="公安",
            area="某某县",
            valid_from=valid_from,
            valid_to=valid_to,
        ),
    )


def pass_legal_gate(session: Session, clerk: User, case_id: str) -> None:
    legal.submit(session, clerk, case_id, legal.ProposedDecision(**LEGAL_PROPOSAL))


# A proposed decision the legal-review catalogue does not list for review (not-required): enough for the
# gate to let a decision document through. Publicity's own category is independent of it.
LEGAL_PROPOSAL: dict[str, Any] = {
    "decision_kind": "no-penalty",
    "facts": "违法停车，经教育后改正。",
    "legal_basis": ["道路交通安全法 第九十三条"],
    "evidence": [],
    "attest": True,
}


def case_with_decision(
    session: Session,
    clerk: User,
    number: str = "2025-001",
    *,
    body: str = DECISION_TEXT,
    officers: tuple[str, ...] = ("0815",),
    at: datetime = datetime(2025, 3, 3, 2, 0, tzinfo=UTC),
    with_decision: bool = True,
) -> tuple[str, str | None]:
    """A case (opened by ``clerk``) and, unless told otherwise, its decision document. The decision
    passes the legal-review gate (issue 12) the way a decision the catalogue does not list for review
    does: its proposed decision is submitted and classified first."""
    case = cases.create_case(
        session, clerk, cases.CaseInput(number=number, title="违法停车", kind=CaseKind.ADMINISTRATIVE)
    )
    if with_decision:
        pass_legal_gate(session, clerk, case.id)
    rec, _ = cases.add_record(
        session,
        clerk,
        case.id,
        cases.RecordInput(
            stage=Stage.DECISION if with_decision else Stage.INVESTIGATION,
            doc_kind=DocumentKind.DECISION if with_decision else DocumentKind.INQUIRY_TRANSCRIPT,
            author="0815",
            officers=officers,
            occurred_from=at,
            occurred_to=at + timedelta(minutes=30),
            body=body,
            title="行政处罚决定书",
        ),
    )
    return case.id, rec.record_id if with_decision else None


def penalty_decision(
    session: Session, publisher: User, clerk: User, number: str, *, publish: bool = True
) -> Decision:
    """A penalty decided on 3 March 2025 against the natural person ``PARTY``, registered by
    ``publisher`` on a case ``clerk`` opened; unless told otherwise redacted and approved (published)."""
    case_id, _record = case_with_decision(session, clerk, number)
    d = decisions.register(
        session,
        publisher,
        decisions.DecisionInput(
            case_id=case_id,
            category=DecisionCategory.PENALTY,
            decided_on=date(2025, 3, 3),
            party_kind=PartyKind.NATURAL_PERSON,
            party_name=PARTY,
            conclusion=CONCLUSION,
        ),
    )
    if publish:
        r = decisions.draft_redaction(session, publisher, d.id)
        decisions.approve(session, publisher, d.id, r.version, r.sha256)
    return d

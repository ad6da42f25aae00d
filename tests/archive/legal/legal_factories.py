"""A case ready for a proposed decision: users of every role, records (investigation-end report,
proposed decision document) and a linked recording; helpers for the proposed decision and checklist."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from archive.accounts import services as accounts
from archive.accounts.models import Role, User
from archive.cases import services as cases
from archive.cases.models import CaseKind, DocumentKind, Stage
from archive.db import session_scope
from archive.legal import services as legal
from archive.legal.catalogue import default_catalogue
from archive.legal.models import (
    LegalAnswer,
    LegalCaseMark,
    LegalEscalation,
    LegalOpinion,
    LegalSubmission,
)
from archive.models import Event
from tests.case_factories import T, media_row

# 10:00 in Beijing on Tuesday 1 December 2026: five working days later is Tuesday 8 December.
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
POINTS = default_catalogue().point_keys
ROLES = {
    "clerk": Role.RECORDS_MANAGER,
    "rev1": Role.REVIEWER,
    "lr1": Role.LEGAL_REVIEWER,
    "lr2": Role.LEGAL_REVIEWER,
    "appr": Role.APPROVER,
    "aud": Role.AUDITOR,
    "off1": Role.OFFICER,
    "root": Role.ADMIN,
}


@dataclass
class World:
    engine: Engine
    users: dict[str, User]
    tokens: dict[str, str]
    case_id: str
    report: str  # record id of the investigation-end report
    document: str  # record id of the proposed decision document
    media_id: str

    def user(self, name: str) -> User:
        return self.users[name]


def clock(at: datetime = NOW) -> Any:
    return lambda: at


def make_users(engine: Engine) -> tuple[dict[str, User], dict[str, str]]:
    users: dict[str, User] = {}
    tokens: dict[str, str] = {}
    with session_scope(engine) as s:
        for name, role in ROLES.items():
            u, tok = accounts.add_user(s, name, role)
            users[name], tokens[name] = u, tok
    return users, tokens


def make_case(
    engine: Engine, users: dict[str, User], number: str = "L-1", officer: str = "0815"
) -> tuple[str, str, str, str]:
    clerk = users["clerk"]
    media = media_row(engine, officer=officer, recorded_at=T + timedelta(days=30))
    with session_scope(engine) as s:
        case = cases.create_case(
            s,
            clerk,
            cases.CaseInput(
                number=number,
                title="Noise <b>complaint</b>",
                kind=CaseKind.ADMINISTRATIVE,
                reviewers=["rev1"],
            ),
        )
        report, _ = cases.add_record(
            s,
            clerk,
            case.id,
            cases.RecordInput(
                stage=Stage.INVESTIGATION,
                doc_kind=DocumentKind.REPORT,
                author="0815",
                occurred_from=T,
                occurred_to=T,
                body="Investigation ended: the facts are established.",
                title="Investigation-end report",
                officers=[officer],
            ),
        )
        document, _ = cases.add_record(
            s,
            clerk,
            case.id,
            cases.RecordInput(
                stage=Stage.REVIEW,
                doc_kind=DocumentKind.OTHER,
                author="0815",
                occurred_from=T,
                occurred_to=T,
                body="Proposed: a fine of 2000 yuan.",
                title="Proposed decision document",
            ),
        )
        cases.link_media(s, clerk, case.id, media, "recorded at the scene")
        return case.id, report.record_id, document.record_id, media


def world(engine: Engine) -> World:
    users, tokens = make_users(engine)
    case_id, report, document, media = make_case(engine, users)
    return World(engine, users, tokens, case_id, report, document, media)


def proposal(w: World, **over: Any) -> legal.ProposedDecision:
    values: dict[str, Any] = {
        "decision_kind": "fine",
        "facts": "On 1 December the party played loud music after midnight <script>x</script>.",
        "legal_basis": ["治安管理处罚法 第五十八条"],
        "evidence": [{"record_id": w.report, "version": 1}, {"media_id": w.media_id}],
        "materials": {
            "proposed-decision-document": [{"record_id": w.document, "version": 1}],
            "investigation-end-report": [{"record_id": w.report, "version": 1}],
        },
        "amounts": {"fine": "2000"},
        "attest": True,
    }
    values.update(over)
    return legal.ProposedDecision(**values)


def submit(
    w: World, *, user: str = "rev1", amends: int | None = None, at: datetime = NOW, **over: Any
) -> LegalSubmission:
    with session_scope(w.engine) as s:
        return legal.submit(s, w.user(user), w.case_id, proposal(w, **over), amends=amends, clock=clock(at))


def answer_all(w: World, submission_id: str, *, user: str = "lr1", fail: str | None = None) -> None:
    with session_scope(w.engine) as s:
        for p in POINTS:
            if p == fail:
                legal.answer(s, w.user(user), submission_id, p, "fail", "not shown", clock=clock())
            elif p == "crime-transfer":
                legal.answer(s, w.user(user), submission_id, p, "n/a", "no crime suspected", clock=clock())
            else:
                legal.answer(s, w.user(user), submission_id, p, "pass", clock=clock())


def approve(w: World, submission_id: str, *, user: str = "lr1", **over: Any) -> LegalOpinion:
    answer_all(w, submission_id, user=user)
    with session_scope(w.engine) as s:
        data = legal.OpinionInput(
            **{"outcome": "approve", "reasons": "lawful and proportionate", "attest": True, **over}
        )
        return legal.decide(s, w.user(user), submission_id, data, clock=clock())


def counts(engine: Engine) -> tuple[int, ...]:
    """Rows of every legal table and of the custody log: a refused request changes none of them."""
    with Session(engine) as s:
        return tuple(
            int(s.exec(select(func.count()).select_from(m)).one())
            for m in (LegalSubmission, LegalAnswer, LegalOpinion, LegalEscalation, LegalCaseMark, Event)
        )

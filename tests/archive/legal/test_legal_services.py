"""Legal review through the service layer on PostgreSQL: classification, submission, checklist,
opinion, the gate, amendments voiding approvals, disagreement, deadlines, and bad input that changes
nothing."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.cases import services as cases
from archive.cases.models import Case, CaseKind, DocumentKind, Stage
from archive.db import session_scope
from archive.errors import Forbidden, NotFound
from archive.i18n import use_language
from archive.legal import services as legal
from archive.legal.errors import (
    GateClosed,
    InvalidSubmission,
    ReviewerNotIndependent,
    StaleSubmission,
)
from archive.legal.models import LegalCaseMark, LegalSubmission, SubmissionState
from archive.models import Event
from archive.workdays import services as workdays
from tests.archive.legal.legal_factories import (
    NOW,
    POINTS,
    World,
    answer_all,
    approve,
    clock,
    counts,
    make_case,
    proposal,
    submit,
    world,
)
from tests.archive.workdays.test_provisional import FIXTURE_2027
from tests.case_factories import T


@pytest.fixture
def w(engine: Engine) -> World:
    return world(engine)


def status(w: World, user: str = "clerk", at: datetime = NOW) -> Any:
    with Session(w.engine) as s:
        return legal.review_status(s, w.user(user), w.case_id, clock=clock(at))


def move(w: World, stage: Stage, user: str = "clerk") -> Case:
    with session_scope(w.engine) as s:
        return cases.update_case(s, w.user(user), w.case_id, cases.CaseChange(stage=stage))


def decision_record(w: World, **over: Any) -> Any:
    data = {
        "stage": Stage.DECISION,
        "doc_kind": DocumentKind.DECISION,
        "author": "0815",
        "occurred_from": T,
        "occurred_to": T,
        "body": "Decision: a fine of 2000 yuan.",
        **over,
    }
    with session_scope(w.engine) as s:
        return cases.add_record(s, w.user("clerk"), w.case_id, cases.RecordInput(**data))


def events(w: World, action: str) -> list[Event]:
    with Session(w.engine) as s:
        return list(s.exec(select(Event).where(Event.action == action, Event.subject_id == w.case_id)))


def test_penalty_needs_an_approval_of_the_version_decided(w: World) -> None:
    st = status(w)
    assert (st.status, st.required, st.rule, st.due) == ("awaiting-submission", False, None, None)
    sub = submit(w)
    st = status(w)
    assert (st.status, st.required, st.rule) == ("pending", True, "administrative-penalty")
    assert st.due == date(2026, 12, 8) and not st.overdue
    assert "凡涉及行政处罚" in (st.rule_label_zh or "") and "catalogue v1" in st.explanation
    assert "every administrative penalty" in st.explanation  # the catalogue's English description
    with use_language("zh-CN"):  # a Chinese reader gets the catalogue's Chinese name alone
        assert (
            status(w).explanation
            == "目录清单第 1 版规则 administrative-penalty：凡涉及行政处罚的都要进行法制审核"
        )
    assert st.submission is not None and st.submission.attestation.startswith("I submit")
    assert st.checklist[0].label_zh == "执法主体是否合法" and len(st.checklist) == 10

    for stage in (Stage.DECISION, Stage.EXECUTION):
        with pytest.raises(GateClosed, match="legal review"):
            move(w, stage)
    with pytest.raises(GateClosed, match="legal review"):
        decision_record(w)
    with pytest.raises(GateClosed):  # a decision document at any stage
        decision_record(w, stage=Stage.REVIEW)

    opinion = approve(w, sub.id)
    assert opinion.digest == sub.digest and len(opinion.checklist) == 10
    st = status(w)
    assert st.status == "approved" and st.opinion is not None and st.opinion.outcome_zh == "通过"
    assert st.opinion.attestation.startswith("I answer")
    assert move(w, Stage.DECISION).stage == Stage.DECISION
    decision_record(w)
    passed = events(w, "legal.gate.pass")
    assert len(passed) == 2 and all(e.details["digest"] == sub.digest for e in passed)
    actions = [
        e.action for e in events(w, "legal.submit") + events(w, "legal.answer") + events(w, "legal.opinion")
    ]
    assert actions.count("legal.answer") == 10 and "legal.opinion" in actions


def test_no_decision_without_a_proposed_decision(w: World, engine: Engine) -> None:
    with pytest.raises(GateClosed, match="proposed decision"):
        move(w, Stage.DECISION)
    with pytest.raises(GateClosed, match="proposed decision"):
        decision_record(w)
    with pytest.raises(GateClosed, match="proposed decision"), session_scope(engine) as s:
        cases.create_case(
            s,
            w.user("clerk"),
            cases.CaseInput(number="L-9", title="t", kind=CaseKind.ADMINISTRATIVE, stage=Stage.SERVICE),
        )
    # Not even by writing the row directly through the ORM.
    with pytest.raises(GateClosed), session_scope(engine) as s:
        case = s.get(Case, w.case_id)
        assert case is not None
        case.stage = Stage.DECISION
        s.add(case)
        s.flush()
    with Session(engine) as s:
        assert s.get(Case, w.case_id).stage == Stage.FILING  # type: ignore[union-attr]


def test_a_decision_the_catalogue_does_not_list_passes_after_classification(w: World) -> None:
    sub = submit(w, decision_kind="no-penalty", amounts={}, materials={})
    assert sub.state == SubmissionState.NOT_REQUIRED and sub.due is None
    st = status(w)
    assert (st.status, st.required, st.rule) == ("not-required", False, None)
    assert move(w, Stage.DECISION).stage == Stage.DECISION


def test_a_case_marked_major_needs_review_whatever_the_decision(w: World) -> None:
    with session_scope(w.engine) as s:
        legal.mark_case(
            s, w.user("clerk"), w.case_id, "complex", "several legal relationships", clock=clock()
        )
    st = status(w)
    assert (st.status, st.required, st.rule) == ("awaiting-submission", True, "complex")
    sub = submit(w, decision_kind="no-penalty", amounts={})
    assert sub.required and sub.rule_id == "complex" and sub.marks == ["complex"]
    with pytest.raises(GateClosed, match="rule complex"):
        move(w, Stage.DECISION)


@pytest.mark.parametrize(
    ("over", "rule"),
    [
        ({"decision_kind": "licence-revocation", "amounts": {}}, "licence-revocation"),
        ({"decision_kind": "order-to-stop-production", "amounts": {}}, "stop-production"),
        ({"amounts": {"fine": "10000"}}, "large-fine"),
    ],
)
def test_catalogue_rules(w: World, over: dict[str, Any], rule: str) -> None:
    sub = submit(w, **over)
    assert sub.rule_id == rule and "administrative-penalty" in sub.matched_rules


def test_a_mark_after_submission_requires_classifying_again(w: World) -> None:
    sub = submit(w, decision_kind="no-penalty", amounts={}, materials={})
    assert not sub.required
    with session_scope(w.engine) as s:
        legal.mark_case(
            s, w.user("clerk"), w.case_id, "major-rights", "the party loses its licence", clock=clock()
        )
    st = status(w)
    assert (st.status, st.required, st.rule) == ("awaiting-submission", True, "major-rights")
    with pytest.raises(GateClosed, match="proposed decision"):
        move(w, Stage.DECISION)
    again = submit(w, decision_kind="no-penalty", amounts={})
    assert again.required and again.rule_id == "major-rights"
    # A mark written straight into the table (not through the service) still closes the gate.
    approve(w, again.id)
    with session_scope(w.engine) as s:
        s.add(LegalCaseMark(case_id=w.case_id, mark="complex", reason="x", set_by="sql"))
    with pytest.raises(GateClosed, match="marks"):
        move(w, Stage.DECISION)


def test_hearing_needs_its_transcript(w: World) -> None:
    before = counts(w.engine)
    with pytest.raises(InvalidSubmission, match="hearing-transcript"):
        submit(w, hearing=True)
    assert counts(w.engine) == before
    sub = submit(
        w,
        hearing=True,
        materials={
            "proposed-decision-document": [{"record_id": w.document, "version": 1}],
            "investigation-end-report": [{"record_id": w.report, "version": 1}],
            "hearing-transcript": [{"record_id": w.report, "version": 1}],
        },
    )
    assert sub.rule_id == "after-hearing"


def test_amending_voids_the_approval_visibly(w: World) -> None:
    v1 = submit(w)
    approve(w, v1.id)
    with pytest.raises(StaleSubmission, match="amends=1"):
        submit(w)  # a second submission must say which version it amends
    v2 = submit(w, amends=1, amounts={"fine": "1500"})
    assert v2.version == 2 and v2.supersedes == 1
    with Session(w.engine) as s:
        assert s.get(LegalSubmission, v1.id).state == SubmissionState.VOIDED  # type: ignore[union-attr]
    voided = events(w, "legal.approval.void")
    assert len(voided) == 1 and voided[0].details["digest"] == v1.digest
    assert status(w).status == "pending"
    with pytest.raises(GateClosed, match="version 2 is pending"):
        move(w, Stage.DECISION)
    approve(w, v2.id)
    with session_scope(w.engine) as s:
        legal.withdraw(s, w.user("rev1"), v2.id, "the party paid voluntarily", clock=clock())
    assert status(w).status == "voided"
    with pytest.raises(GateClosed):
        move(w, Stage.DECISION)


def test_return_escalate_and_collective_discussion(w: World) -> None:
    sub = submit(w)
    with session_scope(w.engine) as s:
        legal.decide(
            s, w.user("lr1"), sub.id, legal.OpinionInput("return", "the hearing notice is missing", True)
        )
    assert status(w).status == "returned"
    with pytest.raises(Forbidden), session_scope(w.engine) as s:
        legal.escalate(s, w.user("lr1"), sub.id, "x")
    with session_scope(w.engine) as s:
        legal.escalate(s, w.user("rev1"), sub.id, "the notice was served orally and recorded")
    st = status(w)
    assert st.status == "escalated" and st.escalation is not None and st.escalation.outcome is None
    for who in ("rev1", "lr1", "clerk"):
        with pytest.raises(Forbidden), session_scope(w.engine) as s:
            legal.record_collective(s, w.user(who), sub.id, "resubmit", "r", ["a"])
    with session_scope(w.engine) as s:
        legal.record_collective(
            s,
            w.user("appr"),
            sub.id,
            "resubmit",
            "serve the notice in writing, then resubmit",
            ["局长", "法制科长"],
        )
    st = status(w)
    assert (
        st.status == "escalated"
        and st.escalation is not None
        and st.escalation.outcome_zh == "修改后重新报送审核"
    )
    with pytest.raises(GateClosed):  # collective discussion never replaces the review
        move(w, Stage.DECISION)
    assert [e.action for e in events(w, "legal.collective")] == ["legal.collective"]


def test_disapproval_blocks(w: World) -> None:
    sub = submit(w)
    with session_scope(w.engine) as s:
        legal.decide(s, w.user("lr2"), sub.id, legal.OpinionInput("disapprove", "no lawful basis", True))
    assert status(w).status == "disapproved"
    with pytest.raises(GateClosed, match="disapproved"):
        move(w, Stage.DECISION)


def test_higher_authority_is_named_with_who_answered(w: World) -> None:
    with session_scope(w.engine) as s:
        legal.mark_case(
            s, w.user("clerk"), w.case_id, "major-social-impact", "widely reported", clock=clock()
        )
    sub = submit(w)
    assert sub.higher_authority and sub.rule_id == "major-social-impact"
    answer_all(w, sub.id)
    with pytest.raises(InvalidSubmission, match="higher authority"), session_scope(w.engine) as s:
        legal.decide(s, w.user("lr1"), sub.id, legal.OpinionInput("approve", "ok", True))
    with session_scope(w.engine) as s:
        legal.decide(
            s,
            w.user("lr1"),
            sub.id,
            legal.OpinionInput("approve", "ok", True, authority="市公安局法制支队", answered_by="王警官"),
        )
    st = status(w)
    assert st.higher_authority and st.opinion is not None and st.opinion.answered_by == "王警官"


def test_bad_input_is_refused_and_changes_nothing(w: World, engine: Engine) -> None:
    other_case, other_report, _, other_media = make_case(engine, w.users, number="L-2", officer="4711")
    sub = submit(w)
    answer_all(w, sub.id)
    before = counts(engine)

    def refused(exc: type[Exception], match: str, fn: Any) -> None:
        with pytest.raises(exc, match=match), session_scope(engine) as s:
            fn(s)
        assert counts(engine) == before

    lr1 = w.user("lr1")
    refused(
        InvalidSubmission, "unknown checklist point", lambda s: legal.answer(s, lr1, sub.id, "mood", "pass")
    )
    refused(
        InvalidSubmission,
        "use pass, fail or n/a",
        lambda s: legal.answer(s, lr1, sub.id, "clear-facts", "ok"),
    )
    refused(InvalidSubmission, "needs a note", lambda s: legal.answer(s, lr1, sub.id, "clear-facts", "fail"))
    refused(
        InvalidSubmission,
        "opinion text",
        lambda s: legal.decide(s, lr1, sub.id, legal.OpinionInput("approve", " ", True)),
    )
    refused(
        InvalidSubmission,
        "attest",
        lambda s: legal.decide(s, lr1, sub.id, legal.OpinionInput("approve", "ok")),
    )
    refused(
        InvalidSubmission,
        "use approve",
        lambda s: legal.decide(s, lr1, sub.id, legal.OpinionInput("maybe", "ok", True)),
    )
    refused(
        NotFound, "no legal review submission", lambda s: legal.answer(s, lr1, "nope", "clear-facts", "pass")
    )
    for who in ("clerk", "rev1", "appr", "aud", "off1", "root"):
        refused(
            Forbidden,
            "may not",
            lambda s, who=who: legal.decide(
                s, w.user(who), sub.id, legal.OpinionInput("approve", "ok", True)
            ),
        )
        refused(
            Forbidden,
            "may not",
            lambda s, who=who: legal.answer(s, w.user(who), sub.id, "clear-facts", "pass"),
        )
    for bad, match in (
        ({"evidence": [{"record_id": other_report, "version": 1}]}, "is not a record of case L-1"),
        ({"evidence": [{"media_id": other_media}]}, "is not linked to case L-1"),
        ({"evidence": [{"path": "/etc/passwd"}]}, "a reference is"),
        ({"evidence": []}, "evidence"),
        ({"materials": {}}, "proposed-decision-document"),
        ({"materials": {"bribe": []}}, "unknown material"),
        ({"decision_kind": "exile"}, "unknown decision kind"),
        ({"amounts": {"fine": "lots"}}, "not a number"),
        ({"legal_basis": []}, "legal_basis"),
        ({"facts": "  "}, "facts"),
        ({"attest": False}, "attest"),
    ):
        refused(
            InvalidSubmission,
            match,
            lambda s, bad=bad: legal.submit(s, w.user("rev1"), w.case_id, proposal(w, **bad), amends=1),
        )
    assert other_case

    # A failed point refuses approval; a reviewer who wrote a record of the case may not review it.
    with session_scope(engine) as s:
        legal.answer(s, lr1, sub.id, "correct-law", "fail", "wrong article cited")
    before = counts(engine)
    refused(
        InvalidSubmission,
        "failed checklist points: correct-law",
        lambda s: legal.decide(s, lr1, sub.id, legal.OpinionInput("approve", "ok", True)),
    )
    with session_scope(engine) as s:
        cases.add_record(
            s,
            w.user("clerk"),
            w.case_id,
            cases.RecordInput(
                stage=Stage.REVIEW,
                doc_kind=DocumentKind.OTHER,
                author="lr2",
                occurred_from=T,
                occurred_to=T,
                body="note",
            ),
        )
    before = counts(engine)
    refused(
        ReviewerNotIndependent,
        "wrote or is named in a record",
        lambda s: legal.answer(s, w.user("lr2"), sub.id, "clear-facts", "pass"),
    )

    # Review of a superseded or withdrawn submission.
    v2 = submit(w, amends=1)
    before = counts(engine)
    refused(StaleSubmission, "superseded", lambda s: legal.answer(s, lr1, sub.id, "clear-facts", "pass"))
    refused(
        StaleSubmission,
        "superseded",
        lambda s: legal.decide(s, lr1, sub.id, legal.OpinionInput("return", "x", True)),
    )
    with session_scope(engine) as s:
        legal.withdraw(s, w.user("rev1"), v2.id, "mistake")
    before = counts(engine)
    refused(
        StaleSubmission,
        "withdrawn",
        lambda s: legal.decide(s, lr1, v2.id, legal.OpinionInput("return", "x", True)),
    )


def test_deadline_and_overdue_list(w: World) -> None:
    sub = submit(w)
    assert sub.due == date(2026, 12, 8) and sub.calendar == "default v1"
    on_time = datetime(2026, 12, 8, 15, 59, tzinfo=UTC)  # 23:59 on the 8th in Beijing
    late = datetime(2026, 12, 8, 16, 0, tzinfo=UTC)  # 00:00 on the 9th
    assert not status(w, at=on_time).overdue
    st = status(w, at=late)
    assert st.overdue and st.working_days_overdue == 1
    with Session(w.engine) as s:
        assert legal.overdue(s, w.user("lr1"), clock=clock(on_time)).total == 0
        listed = legal.overdue(s, w.user("lr1"), clock=clock(late))
        assert (
            listed.total == 1 and listed.items[0].case_number == "L-1" and listed.today == date(2026, 12, 9)
        )
        for who in ("rev1", "off1"):
            with pytest.raises(Forbidden):
                legal.overdue(s, w.user(who), clock=clock(late))
    approve(w, sub.id)
    with Session(w.engine) as s:
        assert legal.overdue(s, w.user("lr1"), clock=clock(late)).total == 0


def test_a_deadline_in_an_unknown_year_is_provisional_then_recomputed(w: World) -> None:
    """Submitted on Monday 28 December 2026, before anyone loaded 2027: the submission is accepted
    with a provisional due date (every day of 2027 counted as working: never later than the real
    one), shown as such, and recomputed from its start when the operator sets 2027 (a test fixture)."""
    sub = submit(w, at=datetime(2026, 12, 28, 2, 0, tzinfo=UTC))
    assert (sub.due, sub.due_provisional, sub.due_missing_years, sub.due_weekdays) == (
        date(2027, 1, 2),
        True,
        [2027],
        date(2027, 1, 4),
    )
    with Session(w.engine) as s:
        logged = s.exec(select(Event).where(Event.action == "legal.submit")).one()
        assert logged.details["due_provisional"] is True and logged.details["due_missing_years"] == [2027]
    with use_language("zh_CN"):
        st = status(w, at=datetime(2026, 12, 29, 2, tzinfo=UTC))
        assert st.due_note == "暂定，2027 年节假日安排未载入" and st.due_provisional
        assert st.submission is not None and st.submission.due_note == st.due_note
        assert "2027" in st.due_explanation and st.due_weekdays == date(2027, 1, 4)
    # Overdue on the provisional date (the conservative side), counted without refusing: 3 January.
    late = status(w, at=datetime(2027, 1, 3, 2, tzinfo=UTC))
    assert late.overdue and late.working_days_overdue == 1 and late.due_provisional
    with Session(w.engine) as s:
        listed = legal.overdue(s, w.user("lr1"), clock=clock(datetime(2027, 1, 3, 2, tzinfo=UTC)))
        (item,) = listed.items
        assert item.due_provisional and item.due_missing_years == [2027] and "2027" in item.due_note

    fixture = json.loads(FIXTURE_2027.read_text(encoding="utf-8"))
    with session_scope(w.engine) as s:
        done = workdays.install(s, w.user("clerk"), fixture, "test fixture standing in for 2027")
        assert (done.recomputed.legal, done.recomputed.publicity) == (1, 0)
    with Session(w.engine) as s:
        again = s.get(LegalSubmission, sub.id)
        assert again is not None
        # 29, 30, 31 December; 1 January a holiday (in the fixture); 4 and 5 January.
        assert (again.due, again.due_provisional, again.due_missing_years, again.due_weekdays) == (
            date(2027, 1, 5),
            False,
            [],
            None,
        )
        assert again.calendar == "db v1"
        (ev,) = s.exec(select(Event).where(Event.action == "legal.due.recompute")).all()
        assert (ev.subject_type, ev.subject_id, ev.actor) == ("case", w.case_id, "user:clerk")
        assert ev.details["old_due"] == "2027-01-02" and ev.details["new_due"] == "2027-01-05"
        assert ev.details["calendar_version"] == 1 and ev.details["provisional"] is False
    assert not status(w, at=datetime(2027, 1, 3, 2, tzinfo=UTC)).overdue
    assert status(w).due_note == ""
    # Idempotent: setting the calendar again changes and logs nothing more.
    with session_scope(w.engine) as s:
        assert workdays.install(s, w.user("clerk"), fixture, "again").recomputed.total == 0
    with Session(w.engine) as s:
        assert len(s.exec(select(Event).where(Event.action == "legal.due.recompute")).all()) == 1


def test_a_calendar_that_still_lacks_the_year_keeps_the_deadline_provisional(w: World) -> None:
    """A new calendar version without 2027 recomputes only what it changes: nothing, or (a local rest
    day on 1 January 2027) a new provisional date that stays provisional and says so in the log."""
    sub = submit(w, at=datetime(2026, 12, 28, 2, 0, tzinfo=UTC))
    with session_scope(w.engine) as s:
        unrelated = {"days": [{"date": "2026-12-31", "working": True, "reason": "test: already one"}]}
        assert workdays.install(s, w.user("clerk"), unrelated, "no 2027 yet").recomputed.total == 0
    closure = {"days": [{"date": "2027-01-01", "working": False, "reason": "test: New Year closure"}]}
    with session_scope(w.engine) as s:
        assert workdays.install(s, w.user("clerk"), closure, "closure").recomputed.legal == 1
    with Session(w.engine) as s:
        again = s.get(LegalSubmission, sub.id)
        assert again is not None and again.due_provisional and again.due_missing_years == [2027]
        assert (again.due, again.due_weekdays) == (date(2027, 1, 3), date(2027, 1, 5))
        (ev,) = s.exec(select(Event).where(Event.action == "legal.due.recompute")).all()
        assert ev.details["provisional"] is True and ev.details["missing_years"] == [2027]
        assert ev.details["calendar_version"] == 2


def test_two_concurrent_opinions_one_wins(w: World) -> None:
    sub = submit(w)
    answer_all(w, sub.id)
    answer_all(w, sub.id, user="lr2")
    results: dict[str, Any] = {}
    first = Session(w.engine, expire_on_commit=False)
    legal.decide(
        first, w.user("lr1"), sub.id, legal.OpinionInput("approve", "lawful", True)
    )  # holds the row lock

    def second() -> None:
        try:
            with session_scope(w.engine) as s:
                legal.decide(s, w.user("lr2"), sub.id, legal.OpinionInput("disapprove", "unlawful", True))
            results["second"] = "won"
        except StaleSubmission as exc:
            results["second"] = exc

    t = threading.Thread(target=second)
    t.start()
    time.sleep(0.5)  # the second waits on the row lock (not a timed assertion: either order ends the same)
    first.commit()
    first.close()
    t.join(30)
    assert isinstance(results["second"], StaleSubmission)
    with Session(w.engine) as s:
        assert s.get(LegalSubmission, sub.id).state == SubmissionState.APPROVED  # type: ignore[union-attr]
    assert len(events(w, "legal.opinion")) == 1
    # The optimistic check, too: an opinion based on a version of the row that changed is refused.
    v2 = submit(w, amends=1)
    with pytest.raises(StaleSubmission, match="reload"), session_scope(w.engine) as s:
        legal.decide(
            s, w.user("lr1"), v2.id, legal.OpinionInput("return", "x", True, expected_lock_version=7)
        )


def test_the_stored_proposal_cannot_be_altered(w: World) -> None:
    sub = submit(w)
    with pytest.raises(Exception, match="never changes"), session_scope(w.engine) as s:
        s.exec(select(LegalSubmission)).first()
        from sqlalchemy import text

        s.execute(text("UPDATE legal_submissions SET facts = 'edited' WHERE id = :i"), {"i": sub.id})
    assert POINTS

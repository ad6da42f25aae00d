"""Requirement A10 on PostgreSQL: a decision's performance (履行情况) recorded in versions, logged with
the old and the new status, shown on the public face (status and date, never the note) only while the
decision is published; random-inspection results (双随机抽查结果) registered as drafts with their public
content fixed and masked, approved by its SHA-256, withdrawn from the public face and kept."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive.accounts.models import User
from archive.db import session_scope
from archive.errors import Forbidden, InvalidInput
from archive.i18n import use_language
from archive.models import Event
from archive.publicity import decisions, inspections, performance, public, report
from archive.publicity.errors import (
    ConcurrentChange,
    DecisionNotFound,
    DigestMismatch,
    InspectionNotFound,
    WrongState,
)
from archive.publicity.models import (
    Decision,
    InspectionOutcome,
    InspectionState,
    PartyKind,
    PerformanceStatus,
    RandomInspection,
    WithdrawalGround,
)
from archive.publicity.services import today
from archive.restricted import services as restricted
from archive.restricted.models import MarkCreate, Sensitivity, SubjectKind
from archive.signing import Keyring
from tests.archive.publicity.publicity_factories import fixed, penalty_decision, users

NOTE = "INTERNAL-NOTE-当事人称下月补缴"
PERSON = "王小明"


def _events(engine: Engine, action: str) -> list[Event]:
    with Session(engine) as s:
        return list(s.exec(select(Event).where(Event.action == action).order_by(col(Event.id))))


def _decision(s: Session, u: dict[str, User], number: str, *, publish: bool = True) -> Decision:
    return penalty_decision(s, u["publisher"], u["records"], number, publish=publish)


def test_performance_is_versioned_logged_and_public_without_the_note(engine: Engine) -> None:
    u = users(engine)
    pub = u["publisher"]
    with session_scope(engine) as s:
        d = _decision(s, u, "A10-1")
        pending = _decision(s, u, "A10-2", publish=False)
        ref, pending_ref, did = d.ref, pending.ref, d.id
        assert public.decision(s, ref)["performance"] is None  # type: ignore[index]
        before = public.generation(s)
        performance.record(s, pub, did, PerformanceStatus.NOT_DUE, date(2025, 3, 3), note="期限内")
        assert public.generation(s) != before  # the public cache of rendered answers moves on
        performance.record(s, pub, did, PerformanceStatus.FULFILLED, date(2025, 3, 20), note=NOTE)
        performance.record(s, pub, pending.id, PerformanceStatus.NOT_FULFILLED, date(2025, 4, 1))

    with session_scope(engine) as s:
        rows = performance.history(s, u["auditor"], did)
        assert [(r.version, r.status, r.as_of) for r in rows] == [
            (1, PerformanceStatus.NOT_DUE, date(2025, 3, 3)),
            (2, PerformanceStatus.FULFILLED, date(2025, 3, 20)),
        ]
        assert rows[1].note == NOTE and rows[0].note == "期限内"  # never overwritten
        shown = performance.to_public(s, rows[1])
        assert shown.status_label == "已履行" and shown.decision_ref == ref
        for reader in ("records", "admin", "publisher"):
            assert len(performance.history(s, u[reader], did)) == 2

        entry = public.decision(s, ref)
        assert entry is not None
        shown_public = {"status": "fulfilled", "status_label": "已履行", "as_of": "2025-03-20"}
        assert entry["performance"] == shown_public
        feed, _total = public.decisions(s)
        assert [i["performance"]["status"] for i in feed if i["ref"] == ref] == ["fulfilled"]
        assert NOTE not in str(feed) and NOTE not in str(entry)
        assert pending_ref not in str(feed) and public.decision(s, pending_ref) is None

    logged = _events(engine, "publicity.performance.record")
    assert [(e.details["old_status"], e.details["new_status"]) for e in logged] == [
        (None, "not-due"),
        ("not-due", "fulfilled"),
        (None, "not-fulfilled"),
    ]
    assert logged[0].subject_id == did and logged[0].actor == "user:pub"

    # Withdrawn: the notice stays, no performance with it.
    with session_scope(engine) as s:
        decisions.withdraw(s, pub, did, WithdrawalGround.REVOKED, "依法撤销")
        entry = public.decision(s, ref)
        assert entry is not None and entry["withdrawn"] is not None and entry["performance"] is None
        feed, _total = public.decisions(s)
        assert all(i["performance"] is None for i in feed if i["ref"] == ref)


def test_performance_refusals(engine: Engine) -> None:
    u = users(engine)
    pub = u["publisher"]
    with session_scope(engine) as s:
        did = _decision(s, u, "A10-3", publish=False).id
    with session_scope(engine) as s:
        for role in ("officer", "reviewer", "records", "admin", "auditor"):
            with pytest.raises(Forbidden):
                performance.record(s, u[role], did, PerformanceStatus.FULFILLED, date(2025, 3, 5))
        for role in ("officer", "reviewer"):
            with pytest.raises(Forbidden):
                performance.history(s, u[role], did)
        with pytest.raises(DecisionNotFound):
            performance.record(s, pub, "no-such-decision", PerformanceStatus.FULFILLED, date(2025, 3, 5))
        with pytest.raises(DecisionNotFound):
            performance.history(s, pub, "no-such-decision")
        # as_of: not in the future in the agency's time zone, not before the decision.
        late = datetime(2025, 3, 10, 17, 0, tzinfo=UTC)  # 01:00 on 11 March in Beijing
        with pytest.raises(InvalidInput, match="as_of: 2025-03-12 is in the future"):
            performance.record(s, pub, did, PerformanceStatus.FULFILLED, date(2025, 3, 12), clock=fixed(late))
        performance.record(s, pub, did, PerformanceStatus.FULFILLED, date(2025, 3, 11), clock=fixed(late))
        with pytest.raises(InvalidInput, match="as_of: 2025-03-02 is before the decision"):
            performance.record(s, pub, did, PerformanceStatus.FULFILLED, date(2025, 3, 2))
        with pytest.raises(InvalidInput, match="in the future"):
            performance.record(s, pub, did, PerformanceStatus.FULFILLED, today() + timedelta(days=1))
    assert len(_events(engine, "publicity.performance.record")) == 1


def _inspection(party_kind: PartyKind, party: str, **kw: object) -> inspections.InspectionInput:
    data: dict[str, object] = {
        "item": "食品经营许可事项监督检查",
        "party_kind": party_kind,
        "party_name": party,
        "inspected_on": date(2025, 5, 6),
        "result": InspectionOutcome.RECTIFY,
        "summary": f"检查发现{party}经营场所卫生不达标，联系电话13812345678，已责令限期整改。",
        **kw,
    }
    return inspections.InspectionInput(**data)  # type: ignore[arg-type]


def test_inspection_results_draft_approve_withdraw(engine: Engine) -> None:
    u = users(engine)
    pub = u["publisher"]
    with session_scope(engine) as s:
        person = inspections.register(s, pub, _inspection(PartyKind.NATURAL_PERSON, PERSON))
        org = inspections.register(
            s,
            pub,
            _inspection(PartyKind.ORGANISATION, "某某餐饮有限公司", result=InspectionOutcome.NO_PROBLEM),
        )
        assert person.public_party == "王某某" and PERSON not in person.public_summary
        assert "王某某" in person.public_summary and "13812345678" not in person.public_summary
        assert org.public_party == "某某餐饮有限公司" and "某某餐饮有限公司" in org.public_summary
        assert person.state is InspectionState.DRAFT and len(person.sha256) == 64
        pid, oid, pref = person.id, org.id, person.ref
        assert public.inspection_list(s) == ([], 0)  # drafts are not public

    with session_scope(engine) as s:
        with pytest.raises(DigestMismatch):
            inspections.approve(s, pub, pid, "0" * 64)
        row = inspections.get(s, pub, pid)
        assert row.sha256 == inspections.sha256_json(inspections.public_content(row))
        inspections.approve(s, pub, pid, row.sha256)
        with pytest.raises(WrongState):
            inspections.approve(s, pub, pid, row.sha256)
        with pytest.raises(WrongState):  # only a published result is withdrawn
            inspections.withdraw(s, pub, oid, "录入错误")
        org_row = inspections.get(s, pub, oid)
        inspections.approve(s, pub, oid, org_row.sha256)

    with session_scope(engine) as s:
        items, total = public.inspection_list(s)
        assert total == 2 and items[0]["ref"] == org_row.ref  # newest publication first
        mine = next(i for i in items if i["ref"] == pref)
        assert set(mine) == {
            "ref", "authority", "item", "party_kind", "party_kind_label", "party", "inspected_on",
            "result", "result_label", "summary", "published_on", "sha256",
        }  # fmt: skip
        assert mine["party"] == "王某某" and mine["result_label"] == "发现问题已责令整改"
        assert PERSON not in str(items) and pid not in str(items)
        assert mine["sha256"] == inspections.sha256_json(
            {k: mine[k] for k in ("item", "party_kind", "party", "inspected_on", "result", "summary")}
        )
        assert [r.ref for r in inspections.listing(s, u["auditor"], state=InspectionState.PUBLISHED)]

    with session_scope(engine) as s:
        inspections.withdraw(s, pub, pid, "抽查结果有误")
        with pytest.raises(WrongState):
            inspections.withdraw(s, pub, pid, "again")
    with session_scope(engine) as s:
        items, total = public.inspection_list(s)
        assert total == 1 and pref not in str(items)
        kept = s.get(RandomInspection, pid)
        assert kept is not None and kept.state is InspectionState.WITHDRAWN
        assert kept.withdrawal_reason == "抽查结果有误" and kept.withdrawn_by == "pub"

    actions = [e.action for e in _events(engine, "publicity.inspection.register")]
    assert len(actions) == 2
    assert len(_events(engine, "publicity.inspection.publish")) == 2
    withdrawn = _events(engine, "publicity.inspection.withdraw")
    assert len(withdrawn) == 1 and withdrawn[0].subject_id == pid
    assert withdrawn[0].details["reason"] == "抽查结果有误"


def test_inspection_refusals(engine: Engine) -> None:
    u = users(engine)
    pub = u["publisher"]
    with session_scope(engine) as s:
        rid = inspections.register(s, pub, _inspection(PartyKind.ORGANISATION, "某某公司")).id
    with session_scope(engine) as s:
        for role in ("officer", "reviewer", "records", "admin", "auditor"):
            with pytest.raises(Forbidden):
                inspections.register(s, u[role], _inspection(PartyKind.ORGANISATION, "某某公司"))
            with pytest.raises(Forbidden):
                inspections.approve(s, u[role], rid, "0" * 64)
            with pytest.raises(Forbidden):
                inspections.withdraw(s, u[role], rid, "x")
        for role in ("officer", "reviewer"):
            with pytest.raises(Forbidden):
                inspections.listing(s, u[role])
            with pytest.raises(Forbidden):
                inspections.get(s, u[role], rid)
        with pytest.raises(InspectionNotFound):
            inspections.get(s, pub, "nope")
        with pytest.raises(InvalidInput, match=r"inspected_on: .* is in the future"):
            inspections.register(
                s,
                pub,
                _inspection(PartyKind.ORGANISATION, "某某公司", inspected_on=today() + timedelta(days=1)),
            )
        with pytest.raises(InvalidInput, match="summary"):
            inspections.register(s, pub, _inspection(PartyKind.ORGANISATION, "某某公司", summary="  "))
        # the item is published as written: personal data in it is refused, not masked
        with pytest.raises(InvalidInput, match=r"item: contains personal data \(mobile\)"):
            inspections.register(
                s, pub, _inspection(PartyKind.ORGANISATION, "某某公司", item="回访电话 13812345678")
            )
    with session_scope(engine) as s:
        # an organisation keeps its name; personal data inside it is masked like a decision party's
        row = inspections.register(
            s, pub, _inspection(PartyKind.ORGANISATION, "某某公司（联系电话13812345678）")
        )
        assert row.public_party.startswith("某某公司") and "13812345678" not in row.public_party
    assert len(_events(engine, "publicity.inspection.register")) == 2


def test_changes_on_the_public_face_are_pushed(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """With an external platform set, each A10 change the public sees writes its outbox row (A11)."""
    from archive.config import get_settings
    from archive.publicity.models import Delivery

    monkeypatch.setenv("CUSTODY_PUBLICITY_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("CUSTODY_PUBLICITY_WEBHOOK_SECRET", "s" * 32)
    get_settings.cache_clear()
    try:
        u = users(engine)
        pub = u["publisher"]
        with session_scope(engine) as s:
            d = _decision(s, u, "A10-W")
            pending = _decision(s, u, "A10-X", publish=False)
            secret = _decision(s, u, "A10-Y")
            # marked private after it was published: off the public face, and never pushed again
            restricted.mark(
                s,
                u["records"],
                MarkCreate(
                    subject_kind=SubjectKind.RECORD,
                    subject_id=secret.record_id or "",
                    sensitivity=Sensitivity.PRIVACY,
                    reason="个人隐私",
                ),
            )
            performance.record(s, pub, d.id, PerformanceStatus.ENFORCED, date(2025, 4, 2), note=NOTE)
            performance.record(s, pub, pending.id, PerformanceStatus.FULFILLED, date(2025, 4, 2))
            performance.record(s, pub, secret.id, PerformanceStatus.FULFILLED, date(2025, 4, 2))
            row = inspections.register(s, pub, _inspection(PartyKind.NATURAL_PERSON, PERSON))
            inspections.approve(s, pub, row.id, row.sha256)
            inspections.withdraw(s, pub, row.id, "有误")
            ref, iref = d.ref, row.ref
        with Session(engine) as s:
            sent = [
                (x.event, x.subject, x.payload)
                for x in s.exec(select(Delivery).order_by(col(Delivery.created_at)))
                if x.event != "decision.published"
            ]
        assert [(e, subject) for e, subject, _p in sent] == [
            ("decision.performance", ref),  # the unpublished and the restricted decisions' are not pushed
            ("inspection.published", iref),
            ("inspection.withdrawn", iref),
        ]
        assert sent[0][2]["performance"] == {
            "status": "enforced",
            "status_label": "已强制执行",
            "as_of": "2025-04-02",
        }
        assert NOTE not in str(sent) and PERSON not in str(sent)
        assert sent[1][2]["party"] == "王某某" and sent[2][2] == {"ref": iref, "withdrawn_on": str(today())}
    finally:
        get_settings.cache_clear()


def test_the_yearly_report_counts_performance_and_inspections(engine: Engine, tmp_path: Path) -> None:
    """A9 meets A10: the signed yearly report says how the year's decisions were carried out, as of its
    own date, and how many random inspections of the year were published, by result."""
    u = users(engine)
    pub = u["publisher"]
    with session_scope(engine) as s:
        first, second, third = (_decision(s, u, f"A10-R{n}") for n in range(3))
        withdrawn = _decision(s, u, "A10-R3")
        performance.record(s, pub, first.id, PerformanceStatus.NOT_DUE, date(2025, 3, 3))
        performance.record(s, pub, first.id, PerformanceStatus.FULFILLED, date(2025, 4, 1))
        # established after the report's date: not yet what the report can say
        performance.record(s, pub, second.id, PerformanceStatus.COURT, date(2026, 1, 10))
        performance.record(s, pub, withdrawn.id, PerformanceStatus.FULFILLED, date(2025, 3, 5))
        decisions.withdraw(s, pub, withdrawn.id, WithdrawalGround.REVOKED, "依法撤销")
        assert third.id  # nothing stated
        made = []
        for n, (on, outcome) in enumerate(
            [
                (date(2025, 5, 6), InspectionOutcome.RECTIFY),
                (date(2025, 6, 6), InspectionOutcome.RECTIFY),
                (date(2025, 7, 6), InspectionOutcome.NO_PROBLEM),
                (date(2025, 8, 6), InspectionOutcome.PENALISED),  # taken down
                (date(2025, 9, 6), InspectionOutcome.REFERRED),  # a draft: not counted
                (date(2024, 9, 6), InspectionOutcome.REFERRED),  # another year
            ]
        ):
            row = inspections.register(
                s,
                pub,
                inspections.InspectionInput(
                    item=f"检查事项 {n}",
                    party_kind=PartyKind.ORGANISATION,
                    party_name="某某有限公司",
                    inspected_on=on,
                    result=outcome,
                    summary="现场检查",
                ),
            )
            made.append(row)
            if n != 4:
                inspections.approve(s, pub, row.id, row.sha256)
        inspections.withdraw(s, pub, made[3].id, "登记有误")
    keyring = Keyring(tmp_path / "keys")
    with session_scope(engine) as s:
        row = report.draft(s, pub, 2025, keyring, clock=fixed(datetime(2026, 1, 3, 2, tzinfo=UTC)))
        body = row.body
    report.verify(row, keyring)
    assert body["performance"] == {
        "decisions_in_force": 3,
        "by_status": {
            "not-due": 0,
            "fulfilled": 1,
            "partly": 0,
            "not-fulfilled": 0,
            "enforced": 0,
            "court": 0,
            "not-recorded": 2,
        },
    }
    assert body["random_inspections"] == {
        "published": 3,
        "by_result": {"no-problem": 1, "rectify": 2, "penalised": 0, "referred": 0},
        "withdrawn": 1,
    }
    with use_language("zh-CN"):
        page = report.render_html(body)
        assert "已履行" in page and "发现问题已责令整改" in page
    with use_language("en"):
        assert "Random inspections" in report.render_html(body)


def test_two_people_recording_at_once_get_a_conflict_not_an_error(engine: Engine) -> None:
    """Both read the same latest version; the second insert waits on the first's unique key and, once the
    first commits, is refused with 409 publicity.concurrent_change (not a 500). Real PostgreSQL, two
    transactions, the second blocked until the first commits."""
    u = users(engine)
    pub = u["publisher"]
    with session_scope(engine) as s:
        did = _decision(s, u, "A10-C").id
    first = Session(engine)
    performance.record(first, pub, did, PerformanceStatus.NOT_DUE, date(2025, 3, 3))  # v1, not committed
    outcome: dict[str, object] = {}

    def second() -> None:
        try:
            with session_scope(engine) as s:
                performance.record(s, pub, did, PerformanceStatus.FULFILLED, date(2025, 3, 4))  # v1 too
        except Exception as exc:  # noqa: BLE001 - the test reads what it was
            outcome["error"] = exc

    t = threading.Thread(target=second)
    t.start()
    # wait until the second transaction is blocked on the first's row (PostgreSQL says so)
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    deadline = time.monotonic() + 30
    with engine.connect() as watch:
        while not watch.execute(waiting).scalar():
            watch.rollback()  # a new snapshot of pg_stat_activity on each look
            assert time.monotonic() < deadline and t.is_alive(), outcome
            time.sleep(0.05)
    first.commit()
    first.close()
    t.join(30)
    error = outcome.get("error")
    assert isinstance(error, ConcurrentChange), error
    assert error.code == "publicity.concurrent_change" and error.http_status == 409
    with Session(engine) as s:
        assert [(r.version, r.status) for r in performance.history(s, pub, did)] == [
            (1, PerformanceStatus.NOT_DUE)
        ]

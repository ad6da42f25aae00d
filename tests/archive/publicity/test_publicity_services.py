"""Publicity services on PostgreSQL: the roster and the qualification rule (records refused, recordings
flagged), CSV import, deadlines on the working-day calendar, registration, redaction, approval bound to
the SHA-256, residual ID numbers, withdrawal, due lists, the signed yearly report and its schedule."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from archive.accounts.models import User
from archive.cases import services as cases
from archive.cases.models import DocumentKind, Stage, TextRecord
from archive.config import Settings
from archive.db import session_scope
from archive.errors import Conflict, Forbidden, InvalidInput
from archive.i18n import use_language
from archive.ingest import uploads
from archive.ingest.models import Upload, UploadState
from archive.models import Event, new_id
from archive.publicity import decisions, documents, public, report, roster
from archive.publicity.errors import (
    DigestMismatch,
    NoDecision,
    ResidualPersonalData,
    Restricted,
    RosterImportError,
    UnqualifiedOfficer,
)
from archive.publicity.models import (
    Decision,
    DecisionCategory,
    DecisionState,
    PartyKind,
    QualificationFlag,
    RosterEntry,
    Timeliness,
    WithdrawalGround,
)
from archive.publicity.models import (
    DocumentKind as PublicDocKind,
)
from archive.signing import Keyring
from archive.workdays import services as workdays
from tests.archive.publicity.publicity_factories import (
    CONCLUSION,
    DECISION_TEXT,
    ID_NUMBER,
    PARTY,
    case_with_decision,
    fixed,
    roster_entry,
    users,
)
from tests.archive.workdays.test_provisional import FIXTURE_2027
from workers.publicity_schedule import DUE_WARN_CRON, REPORT_DRAFT_CRON, REPORT_WARN_CRON, publicity_beat

T = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)  # 10:00 in Beijing, a Monday


def _count(engine: Engine, model: type) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def _register(
    s: Session, u: User, case_id: str, on: date, category: DecisionCategory = DecisionCategory.PENALTY
) -> Decision:
    return decisions.register(
        s,
        u,
        decisions.DecisionInput(
            case_id=case_id,
            category=category,
            decided_on=on,
            party_kind=PartyKind.NATURAL_PERSON,
            party_name=PARTY,
            conclusion=CONCLUSION,
            document_no="某公(交)决字〔2025〕12号",
            persons=["李红"],
        ),
    )


def _upload(s: Session, u: User, officer: str, recorded_at: datetime) -> str:
    meta = {
        "filename": f"{new_id()[:8]}.mp4",
        "officer": officer,
        "device": "BC-1",
        "sha256": hashlib.sha256(new_id().encode()).hexdigest(),
        "recorded_at": recorded_at.isoformat(),
    }
    up = Upload(
        length=10,
        part_size=5,
        object_key=f"originals/{new_id()}",
        created_by=u.id or 0,
        metadata_=meta,
        state=UploadState.COMPLETE,
        offset=10,
    )
    s.add(up)
    s.flush()
    return uploads.complete_upload(s, up, u, "", None).id


def test_qualification_rule_refuses_records_and_flags_recordings(engine: Engine) -> None:
    u = users(engine)
    admin, clerk = u["admin"], u["records"]
    with session_scope(engine) as s:
        # No roster yet: the rule is not in force, records and recordings go through unflagged.
        case_with_decision(s, clerk, "2025-000", officers=("7777",))
        _upload(s, admin, "7777", T)
    assert _count(engine, QualificationFlag) == 0
    with session_scope(engine) as s:
        roster_entry(s, admin, "0815")
        roster_entry(s, admin, "0816", name="钱多", valid_to=date(2024, 12, 31))
        case_id, _ = case_with_decision(s, clerk, "2025-001", officers=("0815",))
    records_before = _count(engine, TextRecord)

    def record(officers: tuple[str, ...], at: datetime = T) -> None:
        with session_scope(engine) as s:
            cases.add_record(
                s,
                clerk,
                case_id,
                cases.RecordInput(
                    stage=Stage.INVESTIGATION,
                    doc_kind=DocumentKind.INSPECTION_RECORD,
                    author="0815",
                    officers=officers,
                    occurred_from=at,
                    occurred_to=at + timedelta(minutes=5),
                    body="检查",
                ),
            )

    with pytest.raises(UnqualifiedOfficer) as exc:
        record(("0815", "0816", "7777"))
    message = str(exc.value)
    assert exc.value.http_status == 422
    assert "0816 (钱多)" in message and "expired on 2024-12-31" in message
    assert "7777 is not in the enforcement roster" in message and "0815" not in message.split(":", 1)[1]
    assert _count(engine, TextRecord) == records_before  # nothing stored
    record(("0815",))
    record(("0816",), at=datetime(2024, 6, 1, 2, tzinfo=UTC))  # valid on that earlier date

    with session_scope(engine) as s:
        entry = s.exec(select(RosterEntry).where(RosterEntry.officer == "0815")).one()
        roster.revoke_entry(s, admin, entry.id or 0, "资格考试作弊")
    with pytest.raises(UnqualifiedOfficer, match="revoked"):
        record(("0815",), at=datetime.now(UTC))

    # A recording by an unqualified officer is archived all the same, and flagged.
    with session_scope(engine) as s:
        flagged = _upload(s, admin, "0816", T)
        fine = _upload(s, admin, "0816", datetime(2024, 6, 1, tzinfo=UTC))
    with session_scope(engine) as s:
        rows = roster.flags(s, u["publisher"])
        assert [f.media_id for f in rows] == [flagged] and fine != flagged
        assert "expired on 2024-12-31" in rows[0].reason and rows[0].on_date == date(2025, 3, 3)
        with pytest.raises(Forbidden):
            roster.flags(s, u["officer"])
        ev = s.exec(select(Event).where(Event.action == "publicity.qualification.flag")).one()
        assert ev.subject_id == flagged


GOOD_CSV = (
    "officer,name,unit,post,badge_no,certificate_no,category,area,valid_from,valid_to\n"
    "0815,赵刚,交警大队,民警,J0815,C-1,公安,某某县,2020-01-01,2030-12-31\n"
    "0816,钱多,交警大队,辅警,,C-2,公安,某某县,2020/1/1,2029-06-30\n"
)


def test_roster_csv_import_is_all_or_nothing(engine: Engine) -> None:
    u = users(engine)
    with session_scope(engine) as s:
        result = roster.import_csv(s, u["admin"], GOOD_CSV.encode("utf-8-sig"))
    assert (result.added, result.updated, result.unchanged) == (2, 0, 0)
    bad_files = {
        "row 3, field valid_to": GOOD_CSV.replace(
            "C-2,公安,某某县,2020/1/1,2029-06-30", "C-3,公安,某某县,2020-01-01,2029-13-01"
        ),
        "row 2, field name: must not be empty": GOOD_CSV.replace("0815,赵刚", "0815,"),
        "row 1: unknown column 'salary'": GOOD_CSV.replace("valid_to\n", "valid_to,salary\n", 1),
        "row 3, field certificate_no: C-1 repeats row 2": GOOD_CSV.replace("C-2", "C-1"),
        "row 3: 9 fields": GOOD_CSV.replace(",2029-06-30", ""),
        "valid_to is before valid_from": GOOD_CSV.replace("2029-06-30", "2019-06-30"),
    }
    for expected, text in bad_files.items():
        changed = text.replace("赵刚", "赵刚刚")  # would be an update if anything were imported
        with pytest.raises(RosterImportError, match=expected.replace("(", r"\(")), session_scope(engine) as s:
            roster.import_csv(s, u["admin"], changed.encode())
        with Session(engine) as s:
            assert s.exec(select(RosterEntry.name).where(RosterEntry.certificate_no == "C-1")).one() == "赵刚"
            assert _count(engine, RosterEntry) == 2
    with pytest.raises(RosterImportError, match="neither UTF-8 nor GB18030"), session_scope(engine) as s:
        roster.import_csv(s, u["admin"], b"\xff\xfe\x00\x81\x30\x81\x30")
    # A Chinese spreadsheet's GB18030 export, with Chinese column titles, updates by certificate number.
    zh = (
        "警号或工号,姓名,单位,职务,警号,证件编号,执法类别,执法区域,有效期起,有效期止\n"
        "0815,赵刚,交警大队,副大队长,J0815,C-1,公安,某某县,2020-01-01,2030-12-31\n"
    )
    with session_scope(engine) as s:
        result = roster.import_csv(s, u["admin"], zh.encode("gb18030"))
    assert (result.added, result.updated) == (0, 1)
    for role in ("publisher", "records", "auditor", "reviewer", "officer"):
        with pytest.raises(Forbidden), session_scope(engine) as s:
            roster.import_csv(s, u[role], GOOD_CSV.encode())


def test_deadlines_follow_the_working_day_calendar(engine: Engine) -> None:
    u = users(engine)
    with session_scope(engine) as s:
        roster_entry(s, u["admin"])
        a, _ = case_with_decision(s, u["records"], "2024-1")
        b, _ = case_with_decision(s, u["records"], "2024-2")
        # Friday 27 September 2024: 29 Sep (Sunday) is a make-up working day, 1-7 Oct the National Day
        # holiday, 12 Oct (Saturday) a make-up day. Seven working days end on Saturday 12 October.
        penalty = _register(s, u["publisher"], a, date(2024, 9, 27))
        inspection = _register(s, u["publisher"], b, date(2024, 9, 27), DecisionCategory.INSPECTION)
        assert penalty.deadline == date(2024, 10, 12)
        assert inspection.deadline == date(2024, 10, 30)
    # A deadline in a year the calendar does not know is provisional, never refused, never a silent
    # guess: every day of 2027 counts as working (the real deadline is never earlier), marked as such.
    late = datetime(2026, 12, 30, 2, tzinfo=UTC)
    with session_scope(engine) as s:
        c, _ = case_with_decision(s, u["records"], "2026-9", at=late)
        d = decisions.register(
            s,
            u["publisher"],
            decisions.DecisionInput(
                case_id=c,
                category=DecisionCategory.PENALTY,
                decided_on=date(2026, 12, 28),
                party_kind=PartyKind.ORGANISATION,
                party_name="某某有限公司",
                conclusion="警告",
            ),
            clock=fixed(late),
        )
        # 29, 30, 31 December; 1-4 January 2027 all counted. Monday-Friday only: 6 January.
        assert (d.deadline, d.deadline_provisional, d.deadline_missing_years, d.deadline_weekdays) == (
            date(2027, 1, 4),
            True,
            [2027],
            date(2027, 1, 6),
        )
        decision_id = d.id
    assert _count(engine, Decision) == 3
    with Session(engine) as s, use_language("zh_CN"):
        shown = decisions.to_public(s, s.get(Decision, decision_id), date(2026, 12, 30))  # type: ignore[arg-type]
        assert shown.deadline_provisional and shown.deadline_note == "暂定，2027 年节假日安排未载入"
        # The due list counts across the missing year without refusing, as the deadline was counted.
        listed = decisions.due_list(s, on=date(2026, 12, 30), soon_days=5)
        (soon,) = [i for i in listed.due_soon if i.id == decision_id]
        assert soon.working_days_left == 5 and soon.deadline_provisional and "2027" in soon.deadline_note
        assert decision_id not in {
            i.id for i in decisions.due_list(s, on=date(2026, 12, 30), soon_days=2).due_soon
        }
    # The operator loads 2027 (a test fixture): the deadline is recomputed from the decision date.
    fixture = json.loads(FIXTURE_2027.read_text(encoding="utf-8"))
    with session_scope(engine) as s:
        done = workdays.install(s, u["records"], fixture, "test fixture standing in for 2027")
        assert (done.recomputed.legal, done.recomputed.publicity) == (0, 1)
    with Session(engine) as s:
        again = s.get(Decision, decision_id)
        assert again is not None and not again.deadline_provisional and again.deadline_missing_years == []
        assert again.deadline == date(2027, 1, 7)  # 1 January a holiday in the fixture
        (ev,) = s.exec(select(Event).where(Event.action == "publicity.deadline.recompute")).all()
        assert (ev.subject_type, ev.subject_id, ev.actor) == ("decision", decision_id, "user:rm")
        assert (ev.details["old_deadline"], ev.details["new_deadline"]) == ("2027-01-04", "2027-01-07")
        assert ev.details["calendar_version"] == 1


def test_registration_needs_a_decision_document_and_the_right_role(engine: Engine) -> None:
    u = users(engine)
    with session_scope(engine) as s:
        bare, _ = case_with_decision(s, u["records"], "2025-7", with_decision=False)
        case_id, _ = case_with_decision(s, u["records"], "2025-8")
    with pytest.raises(NoDecision, match="case 2025-7 has no decision document"), session_scope(engine) as s:
        _register(s, u["publisher"], bare, date(2025, 3, 3))
    for role in ("officer", "reviewer", "auditor"):
        with pytest.raises(Forbidden), session_scope(engine) as s:
            _register(s, u[role], case_id, date(2025, 3, 3))
    with session_scope(engine) as s:
        _register(s, u["records"], case_id, date(2025, 3, 3))
    with pytest.raises(Conflict), session_scope(engine) as s:
        _register(s, u["publisher"], case_id, date(2025, 3, 3))
    assert _count(engine, Decision) == 1


def test_redact_approve_correct_and_withdraw(engine: Engine) -> None:
    u = users(engine)
    pub = u["publisher"]
    with session_scope(engine) as s:
        roster_entry(s, u["admin"])
        case_id, _ = case_with_decision(
            s, u["records"], body=DECISION_TEXT + "\n周五向王大锤了解情况后作出本决定。执法人员赵刚。"
        )
        # The inquiry transcript names 王大锤, so the decision masks him where no label says who he is.
        inquiry = cases.RecordInput(
            stage=Stage.INVESTIGATION,
            doc_kind=DocumentKind.INQUIRY_TRANSCRIPT,
            author="0815",
            officers=("0815",),
            occurred_from=T,
            occurred_to=T,
            body="被询问人：王大锤，男，45岁。",
        )
        cases.add_record(s, u["records"], case_id, inquiry)
        d = _register(s, pub, case_id, date(2025, 3, 3))
        r1 = decisions.draft_redaction(s, pub, d.id)
        did, v1, sha1 = d.id, r1.version, r1.sha256
        for secret in (PARTY, ID_NUMBER, "13812345678", "建国路88号", "A12345", "李红", "王大锤"):
            assert secret not in r1.text, secret
        assert "王某某" in r1.text and "执法人员赵刚" in r1.text  # the officer's name stays
        assert r1.party == "张某某" and r1.conclusion == CONCLUSION and r1.residual == []
        assert "某某县公安局" not in r1.text and "中华人民共和国道路交通安全法" in r1.text
        assert {f["kind"] for f in r1.findings} >= {"name", "id-number", "address", "mobile", "plate"}
    assert sha1 == decisions.redaction_digest(r1.text, r1.party, r1.conclusion)
    with pytest.raises(DigestMismatch), session_scope(engine) as s:
        decisions.approve(s, pub, did, v1, "0" * 64)
    for role in ("admin", "records", "auditor", "officer"):
        with pytest.raises(Forbidden), session_scope(engine) as s:
            decisions.approve(s, u[role], did, v1, sha1)
    with Session(engine) as s:
        assert public.decisions(s)[1] == 0  # nothing public before approval
    approved_at = datetime(2025, 3, 10, 3, tzinfo=UTC)
    with session_scope(engine) as s:
        done = decisions.approve(s, pub, did, v1, sha1, clock=fixed(approved_at))
        assert done.decision.state is DecisionState.PUBLISHED and not done.correction
        assert decisions.timeliness(done.decision, date(2025, 3, 10)) is Timeliness.ON_TIME
    with Session(engine) as s:
        items, total = public.decisions(s)
        assert total == 1 and items[0]["text"] == r1.text and items[0]["published_on"] == "2025-03-10"
        assert did not in str(items) and case_id not in str(items)

    # The publisher's own edit that puts an ID number back is refused unless each hit is overridden.
    edited = r1.text + f"\n附：原身份证号{ID_NUMBER}"
    with session_scope(engine) as s:
        r2 = decisions.draft_redaction(s, pub, did, text=edited)
        v2, sha2 = r2.version, r2.sha256
        assert r2.edited and any(f["kind"] == "id-number" for f in r2.residual)
    with (
        pytest.raises(ResidualPersonalData, match="1 resident ID number") as refused,
        session_scope(engine) as s,
    ):
        decisions.approve(s, pub, did, v2, sha2)
    assert ID_NUMBER not in str(refused.value)
    with pytest.raises(InvalidInput, match="needs a reason"), session_scope(engine) as s:
        decisions.approve(s, pub, did, v2, sha2, overrides=[decisions.Override(ID_NUMBER, " ")])
    with session_scope(engine) as s:
        done = decisions.approve(
            s, pub, did, v2, sha2, overrides=[decisions.Override(ID_NUMBER, "当事人同意公开")]
        )
        assert done.correction and done.decision.corrected_on is not None
    with Session(engine) as s:
        assert public.decision(s, done.decision.ref)["text"] == edited  # type: ignore[index]

    with session_scope(engine) as s:
        decisions.withdraw(s, pub, did, WithdrawalGround.ANNULLED, "经行政复议，决定被撤销（申请人张三）")
    with Session(engine) as s:
        entry = public.decision(s, done.decision.ref)
        assert entry is not None and entry["text"] is None and entry["party"] is None
        assert entry["withdrawn"]["ground"] == "annulled" and "张三" not in entry["withdrawn"]["reason"]
        actions = [e.action for e in s.exec(select(Event).where(Event.subject_id == did).order_by(Event.id))]
        assert actions == [
            "publicity.decision.register",
            "publicity.redaction.draft",
            "publicity.decision.publish",
            "publicity.redaction.draft",
            "publicity.decision.correct",
            "publicity.decision.withdraw",
        ]
    with pytest.raises(Conflict), session_scope(engine) as s:
        decisions.approve(s, pub, did, v1, sha1)


def test_due_lists(engine: Engine) -> None:
    u = users(engine)
    with session_scope(engine) as s:
        roster_entry(s, u["admin"])
        ids = {}
        for n, (cat, on) in enumerate(
            [
                (DecisionCategory.PENALTY, date(2025, 3, 3)),  # deadline 12 March
                (DecisionCategory.LICENSING, date(2025, 3, 10)),  # deadline 19 March
                (DecisionCategory.OTHER, date(2025, 3, 10)),  # deadline 7 April
            ]
        ):
            c, _ = case_with_decision(s, u["records"], f"2025-{n}")
            ids[n] = _register(s, u["publisher"], c, on, cat).id
        due = decisions.due(s, u["auditor"], on=date(2025, 3, 14), soon_days=3)
    assert [i.id for i in due.overdue] == [ids[0]] and due.overdue[0].working_days_left == -2
    assert [i.id for i in due.due_soon] == [ids[1]] and due.due_soon[0].working_days_left == 3
    with pytest.raises(Forbidden), Session(engine) as s:
        decisions.due(s, u["officer"], on=date(2025, 3, 14))


def test_documents_are_versioned_and_approved(engine: Engine) -> None:
    u = users(engine)
    with session_scope(engine) as s:
        v1 = documents.write(
            s, u["publisher"], "remedies", PublicDocKind.REMEDIES, "救济渠道", "可申请行政复议。"
        )
        assert public.document_list(s) == []
        with pytest.raises(Forbidden):
            documents.write(s, u["admin"], "remedies", PublicDocKind.REMEDIES, "x", "y")
        documents.approve(s, u["publisher"], "remedies", v1.version, v1.sha256)
        v2 = documents.write(
            s,
            u["publisher"],
            "remedies",
            PublicDocKind.REMEDIES,
            "救济渠道",
            "可申请行政复议或提起行政诉讼。",
        )
        assert public.document_list(s)[0]["body"] == "可申请行政复议。"  # the draft is not public
        with pytest.raises(DigestMismatch):
            documents.approve(s, u["publisher"], "remedies", v2.version, v1.sha256)
        _doc, previous, _sent = documents.approve(s, u["publisher"], "remedies", v2.version, v2.sha256)
        assert previous is not None and previous.version == 1
        assert [d["version"] for d in public.document_list(s)] == [2]


def test_annual_report_totals_match_its_rows_and_it_is_signed(engine: Engine, settings: Settings) -> None:
    u = users(engine)
    keyring = Keyring(settings.resolved_key_dir())
    pub = u["publisher"]
    plan = [  # category, decided on, published on (None: never), withdrawn
        (DecisionCategory.PENALTY, date(2025, 3, 3), date(2025, 3, 5), False),  # on time
        (DecisionCategory.PENALTY, date(2025, 3, 3), date(2025, 3, 20), False),  # late (due 12 March)
        (DecisionCategory.LICENSING, date(2025, 4, 1), date(2025, 4, 2), True),  # on time, withdrawn
        (DecisionCategory.INSPECTION, date(2025, 5, 6), None, False),  # overdue
        (DecisionCategory.PENALTY, date(2024, 12, 2), date(2024, 12, 3), False),  # another year
    ]
    with session_scope(engine) as s:
        roster_entry(s, u["admin"])
        for n, (cat, on, published, withdrawn) in enumerate(plan):
            c, _ = case_with_decision(s, u["records"], f"R-{n}")
            d = _register(s, pub, c, on, cat)
            if published:
                r = decisions.draft_redaction(s, pub, d.id)
                decisions.approve(
                    s,
                    pub,
                    d.id,
                    r.version,
                    r.sha256,
                    clock=fixed(datetime.combine(published, datetime.min.time(), UTC)),
                )
            if withdrawn:
                decisions.withdraw(
                    s, pub, d.id, WithdrawalGround.REVOKED, "依法撤销", withdrawn_on=date(2025, 6, 1)
                )
        s.add(
            Event(
                actor="user:legal",
                action="legal.review.decide",
                subject_type="case",
                subject_id="x",
                at=datetime(2025, 7, 1, tzinfo=UTC),
            )
        )
    with session_scope(engine) as s:
        row = report.draft(s, pub, 2025, keyring, clock=fixed(datetime(2026, 1, 3, 2, tzinfo=UTC)))
        body = row.body
    report.verify(row, keyring)
    rows = body["rows"]
    assert len(rows) == body["totals"]["decisions"] == 4
    assert body["totals"]["timeliness"] == {"on-time": 2, "late": 1, "overdue": 1, "pending": 0}
    assert body["totals"]["published"] == sum(1 for r in rows if r["published_on"]) == 3
    assert body["totals"]["withdrawn"] == 1 and body["totals"]["withdrawn_by_ground"]["revoked"] == 1
    for key in ("decisions", "published", "withdrawn"):
        assert sum(c[key] for c in body["by_category"].values()) == body["totals"][key]
    for t in ("on-time", "late", "overdue", "pending"):
        assert (
            sum(c["timeliness"][t] for c in body["by_category"].values()) == body["totals"]["timeliness"][t]
        )
    assert body["by_category"]["penalty"]["decisions"] == 2
    assert body["legal_reviews"]["events"] == 1
    assert all(r["ref"] is None for r in rows if r["published_on"] is None)  # unpublished: counted, not named
    with Session(engine) as s:  # the decisions table itself agrees
        n = s.exec(
            select(func.count()).select_from(Decision).where(Decision.decided_on >= date(2025, 1, 1))
        ).one()
        assert n == len(rows)
    with use_language("zh-CN"):
        assert "2025年度行政执法总体情况" in report.render_html(body)
    with use_language("en"):
        assert "Enforcement in 2025: the yearly report" in report.render_html(body)
    with pytest.raises(Forbidden), session_scope(engine) as s:
        report.draft(s, u["auditor"], 2025, keyring)
    with pytest.raises(DigestMismatch), session_scope(engine) as s:
        report.publish(s, pub, 2025, 1, "0" * 64, keyring)

    # The beat: drafting is idempotent, the warning sounds from the 25th while unpublished.
    jan = datetime(2026, 1, 26, 1, tzinfo=UTC)
    with session_scope(engine) as s:
        assert report.draft_if_missing(s, keyring, clock=fixed(jan)) is None  # a version exists
        assert report.warn_if_unpublished(s, clock=fixed(datetime(2026, 1, 20, tzinfo=UTC))) is None
        assert "due by 31 January 2026" in (report.warn_if_unpublished(s, clock=fixed(jan)) or "")
        report.publish(
            s, pub, 2025, 1, hashlib.sha256(__import__("rfc8785").dumps(body)).hexdigest(), keyring
        )
        assert report.warn_if_unpublished(s, clock=fixed(jan)) is None
        assert public.report(s, 2025) is not None


def _runs(schedule: object, year: int) -> list[datetime]:
    """Every hour of ``year`` at which the crontab fires (minute 0 only is checked)."""
    out = []
    t = datetime(year, 1, 1, tzinfo=UTC)
    while t.year == year:
        if (
            t.minute in schedule.minute  # type: ignore[attr-defined]
            and t.hour in schedule.hour  # type: ignore[attr-defined]
            and t.day in schedule.day_of_month  # type: ignore[attr-defined]
            and t.month in schedule.month_of_year  # type: ignore[attr-defined]
            and (t.isoweekday() % 7) in schedule.day_of_week  # type: ignore[attr-defined]
        ):
            out.append(t)
        t += timedelta(hours=1)
    return out


def test_the_report_schedule_means_what_it_says(settings: Settings) -> None:
    drafts = _runs(REPORT_DRAFT_CRON, 2027)
    assert [d.day for d in drafts] == [2, 3, 4, 5, 6] and {(d.month, d.hour) for d in drafts} == {(1, 1)}
    warns = _runs(REPORT_WARN_CRON, 2027)
    assert [d.day for d in warns] == list(range(25, 32)) and {(d.month, d.hour) for d in warns} == {(1, 1)}
    due = _runs(DUE_WARN_CRON, 2027)
    assert len(due) == 0  # minute 30: the hourly walk above never lands on it
    assert (
        DUE_WARN_CRON.minute == {30} and DUE_WARN_CRON.hour == {0} and len(DUE_WARN_CRON.day_of_month) == 31
    )
    beat = publicity_beat(settings)
    assert beat["publicity-due-warn"]["task"] == "custody.publicity_due_warn"
    assert beat["publicity-report-draft"]["task"] == "custody.publicity_report_draft"
    assert (
        beat["publicity-webhook-reconcile"]["schedule"].total_seconds()
        == settings.publicity_reconcile_interval_s
    )
    from workers.celery_app import make_celery

    conf = make_celery().conf
    assert conf.beat_schedule["publicity-report-warn"]["schedule"] is REPORT_WARN_CRON
    assert conf.task_routes["custody.publicity_deliver"] == {"queue": "publicity"}


def test_reconcile_finds_deliveries_whose_task_was_lost(engine: Engine, settings: Settings) -> None:
    from archive.publicity import webhooks

    s2 = settings.model_copy(update={"publicity_webhook_url": "http://127.0.0.1:9/hook"})
    t0 = datetime(2025, 3, 3, tzinfo=UTC)
    with session_scope(engine) as s:
        lost = webhooks.enqueue(s, "decision.published", "D-x", {"ref": "D-x"}, settings=s2, clock=fixed(t0))
        assert lost is not None
        assert (
            webhooks.enqueue(s, "decision.published", "D-y", {}, settings=settings) is None
        )  # no platform set
    with Session(engine) as s:
        assert webhooks.due_for_resend(s, t0 + timedelta(seconds=30), grace_s=60) == []
        assert webhooks.due_for_resend(s, t0 + timedelta(seconds=90), grace_s=60) == [lost.id]


def test_restricted_content_is_never_published(engine: Engine) -> None:
    """Issue 13's marks: a decision document marked restricted is never published, and one marked
    after publication leaves the public face."""
    from archive.publicity import public as public_face
    from archive.restricted import services as restricted
    from archive.restricted.models import MarkCreate, Sensitivity, SubjectKind

    u = users(engine)
    pub = u["publisher"]
    with session_scope(engine) as s:
        roster_entry(s, u["admin"])
        a, _ = case_with_decision(s, u["records"], "X-1")
        b, _ = case_with_decision(s, u["records"], "X-2")
        secret, shown = _register(s, pub, a, date(2025, 3, 3)), _register(s, pub, b, date(2025, 3, 3))
        r_secret = decisions.draft_redaction(s, pub, secret.id)
        r_shown = decisions.draft_redaction(s, pub, shown.id)
        decisions.approve(s, pub, shown.id, r_shown.version, r_shown.sha256)
        secret_record, shown_record = secret.record_id, shown.record_id

    def mark(record_id: str) -> None:
        data = MarkCreate(
            subject_kind=SubjectKind.RECORD,
            subject_id=record_id,
            sensitivity=Sensitivity.PRIVACY,
            reason="个人隐私",
        )
        with session_scope(engine) as s:
            restricted.mark(s, u["records"], data)

    mark(secret_record)
    with pytest.raises(Restricted), session_scope(engine) as s:
        decisions.approve(s, pub, secret.id, r_secret.version, r_secret.sha256)
    mark(shown_record)  # marked after it was published: it leaves the public face
    with Session(engine) as s:
        assert public_face.decisions(s)[0] == [] and public_face.decision(s, shown.ref) is None

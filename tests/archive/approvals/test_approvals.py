"""Issue 10, finding 4: two-person approval. A request with a reason; a second person with the right
role approves (the action carried out in the same transaction, once) or rejects it; the requester
can never decide their own; a request expires; request, decision and execution are all logged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

import retention.approvals  # noqa: F401  (registers retention's kinds, as the API and CLI do)
from archive.accounts import services as accounts
from archive.accounts.models import Role, User
from archive.approvals import services as approvals
from archive.approvals.errors import (
    AlreadyDecided,
    ApprovalNotFound,
    Duplicate,
    Expired,
    InvalidApproval,
    OwnRequest,
    Stale,
)
from archive.approvals.models import ApprovalRequest, ApprovalState
from archive.cases import services as cases
from archive.cases.errors import CaseClosed
from archive.cases.models import CaseKind, CaseStatus
from archive.db import session_scope
from archive.errors import Forbidden
from archive.models import Event
from retention import actions
from retention import services as rs
from retention.models import PolicyVersion
from retention.policy import PolicyInvalid, default_policy
from tests.case_factories import T, media_row


@pytest.fixture
def people(engine: Engine) -> dict[str, User]:
    out = {}
    with session_scope(engine) as s:
        for name, role in [
            ("clerk", Role.RECORDS_MANAGER),
            ("clerk2", Role.RECORDS_MANAGER),
            ("root", Role.ADMIN),
            ("rev", Role.REVIEWER),
            ("aud", Role.AUDITOR),
            ("appr", Role.APPROVER),
        ]:
            out[name] = accounts.add_user(s, name, role)[0]
    return out


def _linked(engine: Engine, clerk: User) -> tuple[str, str]:
    mid = media_row(engine, recorded_at=T)
    with session_scope(engine) as s:
        case = cases.create_case(
            s, clerk, cases.CaseInput("A-1", "Stop", CaseKind.CRIMINAL, reviewers=["rev"])
        )
        cases.link_media(s, clerk, case.id, mid, "seen at the scene")
        return case.id, mid


def _open(engine: Engine, case_id: str, mid: str) -> bool:
    with Session(engine) as s:
        return cases.find_open_link(s, case_id, mid) is not None


def _events(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(Event)).one())


def test_unlink_waits_for_a_second_person_who_is_not_the_requester(
    engine: Engine, people: dict[str, User]
) -> None:
    case_id, mid = _linked(engine, people["clerk"])
    # The assigned reviewer may ask (they may write to the case); nothing changes yet.
    with session_scope(engine) as s:
        req = cases.unlink_media(s, people["rev"], case_id, mid, "wrong car", addr="10.0.0.7")
        rid = req.id or 0
    assert _open(engine, case_id, mid)
    # Neither the requester, nor a role without the approval permission, may approve.
    for who, err in [("rev", Forbidden), ("aud", Forbidden), ("appr", Forbidden)]:
        with pytest.raises(err), session_scope(engine) as s:
            approvals.decide(s, people[who], rid, approve=True)
    # A records manager asking: the same records manager cannot approve it.
    other = media_row(engine, recorded_at=T)
    with session_scope(engine) as s:
        cases.link_media(s, people["clerk"], case_id, other, "seen at the scene")
        own = cases.unlink_media(s, people["clerk"], case_id, other, "other reason").id or 0
    with pytest.raises(OwnRequest), session_scope(engine) as s:
        approvals.decide(s, people["clerk"], own, approve=True)
    with pytest.raises(OwnRequest), session_scope(engine) as s:
        approvals.decide(s, people["clerk"], own, approve=False, reason="changed my mind")
    with session_scope(engine) as s:  # ... but may withdraw it
        assert approvals.cancel(s, people["clerk"], own, "asked twice").state is ApprovalState.CANCELLED
    with pytest.raises(ApprovalNotFound), session_scope(engine) as s:  # nobody else's to withdraw
        approvals.cancel(s, people["clerk2"], rid)
    assert _open(engine, case_id, mid)

    with session_scope(engine) as s:
        done = approvals.decide(
            s, people["clerk2"], rid, approve=True, reason="checked", deps=approvals.Deps(addr="10.0.0.8")
        )
        assert done.state is ApprovalState.APPROVED and done.result == {
            "case": case_id,
            "media": mid,
            "link": done.result["link"],  # type: ignore[index]
        }
    assert not _open(engine, case_id, mid)
    # Approving twice: 409, nothing carried out again, nothing logged.
    n = _events(engine)
    for who in ("clerk2", "root"):
        with pytest.raises(AlreadyDecided), session_scope(engine) as s:
            approvals.decide(s, people[who], rid, approve=True)
    assert _events(engine) == n
    with Session(engine) as s:
        evs = s.exec(
            select(Event)
            .where(
                col(Event.action).in_(
                    ["approval.request", "approval.approve", "case.unlink", "approval.execute"]
                ),
                Event.subject_id == mid,
            )
            .order_by(col(Event.id))
        ).all()
        assert [
            (e.action, e.actor) for e in evs if e.details.get("request", e.details.get("approval")) == rid
        ] == [
            ("approval.request", "user:rev"),
            ("approval.approve", "user:clerk2"),
            ("case.unlink", "user:rev"),
            ("approval.execute", "user:clerk2"),
        ]
    # The requester sees their own request; another reviewer sees nothing; auditors see all.
    with Session(engine) as s:
        assert [r.id for r in approvals.list_requests(s, people["rev"])] == [rid]
        assert len(approvals.list_requests(s, people["aud"])) == 2
        assert [r.id for r in approvals.list_requests(s, people["root"], state=ApprovalState.APPROVED)] == [
            rid
        ]


def test_reject_needs_a_reason_and_carries_nothing_out(engine: Engine, people: dict[str, User]) -> None:
    case_id, mid = _linked(engine, people["clerk"])
    with session_scope(engine) as s:
        rid = cases.unlink_media(s, people["clerk"], case_id, mid, "wrong car").id or 0
    with pytest.raises(InvalidApproval), session_scope(engine) as s:
        approvals.decide(s, people["root"], rid, approve=False, reason=" ")
    with session_scope(engine) as s:
        assert (
            approvals.decide(s, people["root"], rid, approve=False, reason="it is the car").state
            is ApprovalState.REJECTED
        )
    assert _open(engine, case_id, mid)
    with pytest.raises(AlreadyDecided), session_scope(engine) as s:
        approvals.decide(s, people["clerk2"], rid, approve=True)
    assert _open(engine, case_id, mid)


def test_a_request_expires_and_can_be_asked_again(
    engine: Engine, people: dict[str, User], settings: object
) -> None:
    case_id, mid = _linked(engine, people["clerk"])
    t0 = datetime.now(UTC)
    with session_scope(engine) as s:
        rid = cases.unlink_media(s, people["clerk"], case_id, mid, "wrong car", clock=lambda: t0).id or 0
    late = t0 + timedelta(days=7, seconds=1)  # the default lifetime is seven days
    with pytest.raises(Expired), session_scope(engine) as s:
        approvals.decide(s, people["clerk2"], rid, approve=True, clock=lambda: late)
    assert _open(engine, case_id, mid)
    with Session(engine) as s:
        row = s.get(ApprovalRequest, rid)
        assert row is not None and approvals.public(row, clock=lambda: late).state is ApprovalState.EXPIRED
        assert [
            r.id
            for r in approvals.list_requests(
                s, people["clerk"], state=ApprovalState.EXPIRED, clock=lambda: late
            )
        ] == [rid]
    with session_scope(engine) as s:  # asked again after expiry: a new request
        again = cases.unlink_media(s, people["clerk"], case_id, mid, "wrong car", clock=lambda: late).id
    assert again != rid


def test_duplicates_and_a_failed_execution_leave_the_request_pending(
    engine: Engine, people: dict[str, User]
) -> None:
    case_id, mid = _linked(engine, people["clerk"])
    with session_scope(engine) as s:
        rid = cases.unlink_media(s, people["clerk"], case_id, mid, "wrong car").id
        assert cases.unlink_media(s, people["clerk"], case_id, mid, "wrong car, again").id == rid
    with pytest.raises(Duplicate), session_scope(engine) as s:
        cases.unlink_media(s, people["rev"], case_id, mid, "me too")
    with session_scope(engine) as s:
        cases.update_case(s, people["clerk"], case_id, cases.CaseChange(status=CaseStatus.CLOSED))
    # The case closed meanwhile: approving fails whole (409), the request stays pending.
    with pytest.raises(CaseClosed), session_scope(engine) as s:
        approvals.decide(s, people["clerk2"], rid or 0, approve=True)
    with Session(engine) as s:
        row = s.get(ApprovalRequest, rid)
        assert row is not None and row.state is ApprovalState.PENDING and row.decided_by is None
    assert _open(engine, case_id, mid)


def test_policy_change_is_checked_then_approved_and_a_stale_request_refused(
    engine: Engine, people: dict[str, User]
) -> None:
    base = default_policy().to_json()
    n = _events(engine)
    with pytest.raises(PolicyInvalid), session_scope(engine) as s:
        actions.set_policy(s, people["clerk"], {**base, "rules": []}, "simplify")
    with pytest.raises(Forbidden), session_scope(engine) as s:
        actions.set_policy(s, people["root"], {**base, "default_months": 12}, "admins do not ask")
    assert _events(engine) == n
    with session_scope(engine) as s:
        a = actions.set_policy(s, people["clerk"], {**base, "default_months": 12}, "a year").id or 0
        b = actions.set_policy(s, people["clerk2"], {**base, "default_months": 24}, "two years").id or 0
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(PolicyVersion)).one() == 0  # nothing installed yet
    with pytest.raises(OwnRequest), session_scope(engine) as s:
        approvals.decide(s, people["clerk"], a, approve=True)
    with session_scope(engine) as s:
        assert approvals.decide(s, people["root"], a, approve=True).result == {"version": 2}
    with pytest.raises(Stale), session_scope(engine) as s:
        approvals.decide(s, people["clerk"], b, approve=True)
    with Session(engine) as s:
        assert rs.current_policy(s).default_months == 12
        assert [e.actor for e in s.exec(select(Event).where(Event.action == "retention.policy"))] == [
            "user:clerk"
        ]

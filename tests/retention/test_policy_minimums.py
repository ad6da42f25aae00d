"""Issue 10, finding 4: a retention policy below the legal minimums is refused (422 naming what is
wrong) and nothing is stored: no rules, less than six months anywhere, a permanent class removed or
narrowed. Checked when asked and again when installed."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from archive.accounts import services as accounts
from archive.accounts.models import Role
from archive.approvals.models import ApprovalRequest
from archive.db import session_scope
from archive.models import Event
from retention import actions
from retention import services as rs
from retention.models import PolicyVersion
from retention.policy import PolicyInvalid, default_policy, minimum_problems, validate_policy


def _base() -> dict[str, Any]:
    return copy.deepcopy(default_policy().to_json())


def _without(rule_id: str) -> dict[str, Any]:
    p = _base()
    p["rules"] = [r for r in p["rules"] if r["id"] != rule_id]
    return p


def _narrowed(rule_id: str) -> dict[str, Any]:
    p = _base()
    for r in p["rules"]:
        if r["id"] == rule_id:
            r["when"]["case_kinds"] = ["criminal"]
    return p


def _shortened() -> dict[str, Any]:
    p = _base()
    p["rules"].append({"id": "traffic", "keep": "period", "months": 3, "when": {"case_kinds": ["traffic"]}})
    return p


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("no rules", {**_base(), "rules": []}, "rules: []"),
    ("five months", {**_base(), "default_months": 5}, "default_months: 5"),
    ("zero months", {**_base(), "default_months": 0}, "default_months"),
    ("a three-month rule", _shortened(), "rule traffic: 3 months"),
    ("evidence removed", _without("evidence-flag"), "permanent class evidence"),
    ("obstruction removed", _without("obstruction"), "permanent class obstruction"),
    ("major incidents removed", _without("major-incident"), "permanent class major_incident"),
    ("major cases removed", _without("major-case"), "permanent class major_case"),
    ("obstruction narrowed", _narrowed("obstruction"), "permanent class obstruction"),
]


def test_the_default_policy_meets_the_minimums_and_more_is_allowed() -> None:
    assert minimum_problems(default_policy()) == []
    longer = {**_base(), "default_months": 24, "version": 2}
    longer["rules"].append(
        {"id": "traffic", "keep": "period", "months": 12, "when": {"case_kinds": ["traffic"]}}
    )
    assert validate_policy(longer).default_months == 24


@pytest.mark.parametrize(("name", "policy", "named"), BAD, ids=[b[0] for b in BAD])
def test_below_the_minimums_is_refused(name: str, policy: dict[str, Any], named: str) -> None:
    with pytest.raises(PolicyInvalid) as err:
        validate_policy({**policy, "version": 2})
    assert named in str(err.value) and err.value.http_status == 422, name
    assert err.value.error_code == "retention.policy_invalid"


def test_every_problem_is_named_at_once() -> None:
    p = _without("obstruction")
    p["default_months"] = 3
    with pytest.raises(PolicyInvalid) as err:
        validate_policy({**p, "version": 2})
    assert "default_months: 3" in str(err.value) and "obstruction" in str(err.value)


def test_refused_when_asked_and_when_installed_and_nothing_is_stored(engine: Engine) -> None:
    with session_scope(engine) as s:
        clerk = accounts.add_user(s, "clerk", Role.RECORDS_MANAGER)[0]

    def counts() -> tuple[int, int, int]:
        with Session(engine) as s:
            return (
                int(s.exec(select(func.count()).select_from(PolicyVersion)).one()),
                int(s.exec(select(func.count()).select_from(ApprovalRequest)).one()),
                int(s.exec(select(func.count()).select_from(Event)).one()),
            )

    before = counts()
    for name, policy, _named in BAD:
        with pytest.raises(PolicyInvalid), session_scope(engine) as s:
            actions.set_policy(s, clerk, policy, "simplify")
        # The one install path (the approval's, the CLI's) refuses it too.
        with pytest.raises(PolicyInvalid), session_scope(engine) as s:
            rs.set_policy(s, policy, actor="user:clerk", reason=name)
    assert counts() == before

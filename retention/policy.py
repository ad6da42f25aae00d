"""Retention policy as data: a versioned JSON document a records manager can read and change.

The default (``default_policy.json``) encodes the public-security rule for on-scene audio and
video: kept at least six calendar months from the recording; kept permanently when used as
evidence in an administrative or criminal case, when it records obstruction of officers, the
handling of a major emergency or mass incident, or a major, difficult or complex incident;
administrative-enforcement recordings kept as long as their case file; a recorder's "important"
mark held until a reviewer has looked. When several rules apply, the longest wins.
"""

from __future__ import annotations

import calendar
import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from archive.errors import InvalidInput
from archive.i18n import _

DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.json")


class FlagKind(StrEnum):
    """Facts a reviewer (or the recorder) states about a recording, each with a reason."""

    EVIDENCE = "evidence"
    OBSTRUCTION = "obstruction"
    MAJOR_INCIDENT = "major_incident"  # major emergency or mass incident
    MAJOR_CASE = "major_case"  # major, difficult or complex incident
    IMPORTANT = "important"  # the recorder's "important" mark


class Keep(StrEnum):
    """How long a rule keeps an item, from longest to shortest."""

    PERMANENT = "permanent"
    CASE_FILE = "case_file"  # as long as the linked case file exists
    UNTIL_REVIEWED = "until_reviewed"
    PERIOD = "period"  # a number of calendar months from the recording


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flag: FlagKind | None = None
    case_kinds: list[str] | None = None
    used_as_evidence: bool | None = None


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    keep: Keep
    when: Condition
    months: int | None = Field(default=None, ge=1, le=1200)  # for keep = period
    description: str = ""


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)
    title: str = ""
    default_months: int = Field(ge=1, le=1200)
    rules: list[Rule]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class PolicyInvalid(InvalidInput):
    """A policy that is not well formed, or below the legal minimums; nothing is stored."""

    code = "retention.policy_invalid"
    http_status = 422


def parse_policy(data: Any) -> Policy:
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise PolicyInvalid(_("retention policy is not valid: {problems}").format(problems=problems)) from exc
    ids = [r.id for r in policy.rules]
    if len(ids) != len(set(ids)):
        raise PolicyInvalid(_("retention policy names a rule id twice"))
    for r in policy.rules:
        if (r.keep is Keep.PERIOD) != (r.months is not None):
            raise PolicyInvalid(
                _("rule {id}: 'months' goes with keep=period, and only with it").format(id=r.id)
            )
    return policy


# The legal minimums (public-security rules on on-scene audio and video records; docs/retention.md):
# nothing kept less than six calendar months, and these classes kept permanently, whatever else an
# agency's policy says.
MINIMUM_MONTHS = 6
PERMANENT_CLASSES: tuple[FlagKind, ...] = (
    FlagKind.EVIDENCE,
    FlagKind.OBSTRUCTION,
    FlagKind.MAJOR_INCIDENT,
    FlagKind.MAJOR_CASE,
)


def permanent_flags(policy: Policy) -> set[FlagKind]:
    """Flags that, on their own, keep an item permanently under ``policy``."""
    return {
        r.when.flag
        for r in policy.rules
        if r.keep is Keep.PERMANENT
        and r.when.flag is not None
        and r.when.case_kinds is None
        and r.when.used_as_evidence is None
    }


def minimum_problems(policy: Policy) -> list[str]:
    """What in ``policy`` falls below the legal minimums (empty: none)."""
    problems: list[str] = []
    if not policy.rules:
        problems.append(_("rules: a policy without rules (rules: []) keeps nothing permanently"))
    if policy.default_months < MINIMUM_MONTHS:
        problems.append(
            _("default_months: {months} is shorter than the legal minimum of {minimum} months").format(
                months=policy.default_months, minimum=MINIMUM_MONTHS
            )
        )
    for r in policy.rules:
        if r.keep is Keep.PERIOD and r.months is not None and r.months < MINIMUM_MONTHS:
            problems.append(
                _("rule {id}: {months} months is shorter than the legal minimum of {minimum} months").format(
                    id=r.id, months=r.months, minimum=MINIMUM_MONTHS
                )
            )
    kept = permanent_flags(policy)
    for flag in PERMANENT_CLASSES:
        if flag not in kept:
            problems.append(
                _(
                    "the permanent class {flag} cannot be removed: a rule must keep items flagged {flag} "
                    "permanently, with no other condition"
                ).format(flag=flag)
            )
    return problems


def validate_policy(data: Any) -> Policy:
    """Parse ``data`` and hold it to the legal minimums; :class:`PolicyInvalid` (422) names every
    problem. The one check before a policy is asked for and again before it is installed."""
    policy = parse_policy(data)
    problems = minimum_problems(policy)
    if problems:
        raise PolicyInvalid(_("retention policy refused: {problems}").format(problems="; ".join(problems)))
    return policy


def default_policy() -> Policy:
    return parse_policy(json.loads(DEFAULT_POLICY_FILE.read_text()))


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months, clamped to the month's last day: 31 August + 6 months is 28 February
    (29 February in a leap year). Time of day and time zone are kept."""
    if moment.tzinfo is None:
        raise ValueError("retention dates must be timezone-aware")
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)

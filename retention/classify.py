"""Classification: the facts about one item (flags, review, cases, holds), the policy in force
(its versions), and the decision (which rules apply, which wins, the delete-after date)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from archive import events
from archive.cases.models import Case, CaseMedia
from archive.clock import as_utc
from archive.errors import InvalidInput
from archive.i18n import _
from archive.ingest.models import Upload
from archive.media.models import Media
from archive.models import Event
from retention.models import LegalHold, PolicyVersion, RetentionFlag
from retention.policy import (
    FlagKind,
    Keep,
    Policy,
    PolicyInvalid,
    add_months,
    default_policy,
    parse_policy,
    validate_policy,
)

SWEEP_ACTOR = "system:retention-sweep"
_RANK = {Keep.PERMANENT: 3, Keep.CASE_FILE: 2, Keep.UNTIL_REVIEWED: 1, Keep.PERIOD: 0}


# Facts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFact:
    case_id: str
    kind: str  # "administrative" | "criminal"
    used_as_evidence: bool


@dataclass(frozen=True)
class Facts:
    media_id: str
    recorded_at: datetime  # true time: device clock corrected by the measured offset
    flags: frozenset[FlagKind] = frozenset()
    reviewed: bool = False
    cases: tuple[CaseFact, ...] = ()
    legal_hold: bool = False


# Events after which an item's retention facts may have changed without a retention call
# (the cases domain sits below retention and cannot call it): `refresh_changed` re-reads them.
FACT_EVENTS = ("case.link", "case.unlink")


def _case_facts(session: Session, media_id: str, evidence: bool) -> list[CaseFact]:
    """Open case links of the item. Whether it is *used as evidence* is a reviewer's statement
    (the `evidence` flag, with a reason naming the case), not something a link implies."""
    rows = session.exec(
        select(Case.id, Case.kind)
        .join(CaseMedia, col(CaseMedia.case_id) == col(Case.id))
        .where(CaseMedia.media_id == media_id, col(CaseMedia.unlinked_at).is_(None))
    ).all()
    return [CaseFact(case_id, str(kind), evidence) for case_id, kind in rows]


def gather_facts(session: Session, media: Media) -> Facts:
    recorded = media.recorded_at or media.received_at
    recorded = as_utc(recorded) - timedelta(seconds=media.clock_offset_s)
    flags = {
        f.kind
        for f in session.exec(
            select(RetentionFlag).where(
                RetentionFlag.media_id == media.id, col(RetentionFlag.cleared_at).is_(None)
            )
        )
    }
    upload = session.get(Upload, media.upload_id) if media.upload_id else None
    if upload is not None and str(upload.metadata_.get("important", "")).lower() in {"1", "true", "yes"}:
        flags.add(FlagKind.IMPORTANT)
    reviewed = (
        session.exec(
            select(Event.id).where(Event.subject_id == media.id, Event.action == "media.reviewed").limit(1)
        ).first()
        is not None
    )
    held = (
        session.exec(
            select(LegalHold.id)
            .where(LegalHold.media_id == media.id, col(LegalHold.released_at).is_(None))
            .limit(1)
        ).first()
        is not None
    )
    cases = _case_facts(session, media.id, FlagKind.EVIDENCE in flags)
    return Facts(media.id, recorded, frozenset(flags), reviewed, tuple(cases), held)


# Decision ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    rule_id: str
    keep: Keep
    until: datetime | None  # None: indefinite
    description: str


@dataclass(frozen=True)
class Decision:
    policy_version: int
    applies: tuple[Applied, ...]
    winner: Applied
    legal_hold: bool

    @property
    def delete_after(self) -> datetime | None:
        return None if self.legal_hold else self.winner.until

    @property
    def protected(self) -> bool:
        return self.delete_after is None

    def explain(self) -> dict[str, Any]:
        return {
            "policy_version": self.policy_version,
            "rules": [
                {
                    "rule": a.rule_id,
                    "keep": a.keep.value,
                    "until": a.until.isoformat() if a.until else None,
                    "why": a.description,
                }
                for a in self.applies
            ],
            "winner": self.winner.rule_id,
            "legal_hold": self.legal_hold,
            "delete_after": self.delete_after.isoformat() if self.delete_after else None,
            "result": "permanent"
            if self.winner.keep is Keep.PERMANENT
            else (
                "kept" if self.protected else f"delete after {self.delete_after.isoformat()}"  # type: ignore[union-attr]
            ),
        }


def _matches(rule_when: Any, facts: Facts) -> bool:
    if rule_when.flag is not None and rule_when.flag not in facts.flags:
        return False
    if rule_when.case_kinds is not None or rule_when.used_as_evidence is not None:
        kinds = set(rule_when.case_kinds or [])
        hits = [
            c
            for c in facts.cases
            if (not kinds or c.kind in kinds)
            and (rule_when.used_as_evidence is None or c.used_as_evidence == rule_when.used_as_evidence)
        ]
        if not hits:
            return False
    return True


def classify(facts: Facts, policy: Policy) -> Decision:
    """Every rule that applies, and the longest of them. Pure: no clock, no I/O."""
    applies = [
        Applied(
            "default",
            Keep.PERIOD,
            add_months(facts.recorded_at, policy.default_months),
            f"default: {policy.default_months} calendar months from the recording",
        )
    ]
    for rule in policy.rules:
        if not _matches(rule.when, facts):
            continue
        if rule.keep is Keep.UNTIL_REVIEWED and facts.reviewed:
            continue  # a reviewer has looked: this hold has done its work
        until = (
            add_months(facts.recorded_at, rule.months) if rule.keep is Keep.PERIOD and rule.months else None
        )
        applies.append(Applied(rule.id, rule.keep, until, rule.description))

    def length(a: Applied) -> tuple[int, datetime]:
        return (_RANK[a.keep], a.until or datetime.max.replace(tzinfo=UTC))

    winner = max(applies, key=length)
    return Decision(policy.version, tuple(applies), winner, facts.legal_hold)


# Policy versions ---------------------------------------------------------------------------


def current_policy(session: Session) -> Policy:
    row = session.exec(select(PolicyVersion).order_by(col(PolicyVersion.version).desc())).first()
    return parse_policy(row.body) if row else default_policy()


def set_policy(session: Session, data: Any, *, actor: str, reason: str, client_addr: str = "") -> Policy:
    if not reason.strip():
        raise InvalidInput(_("a policy change needs a reason"))
    current = current_policy(session)
    if not isinstance(data, dict):
        raise PolicyInvalid(_("retention policy: not a JSON object"))
    # Issue 10, finding 4: never below the legal minimums (six months; the permanent classes stay).
    policy = validate_policy({**data, "version": current.version + 1})
    session.add(PolicyVersion(version=policy.version, body=policy.to_json(), created_by=actor, reason=reason))
    events.record(
        session,
        actor=actor,
        action="retention.policy",
        subject_type="policy",
        subject_id=str(policy.version),
        client_addr=client_addr,
        details={"reason": reason, "previous_version": current.version},
    )
    return policy

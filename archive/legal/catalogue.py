"""The catalogue (目录清单) as data: which proposed decisions need legal review, what a submission
must carry and what the reviewer answers. Versioned like the retention policy: the default ships as
``default_catalogue.json``; the legal office installs new versions with a reason, each kept, and every
submission records the version and the rule that classified it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from archive.i18n import _, current_language
from archive.legal.errors import InvalidCatalogue

DEFAULT_CATALOGUE_FILE = Path(__file__).with_name("default_catalogue.json")
_KEY = r"^[a-z0-9][a-z0-9-]{0,63}$"


# Marks a records manager sets on a case by hand, with a reason; the catalogue's rules name them.
MARKS: dict[str, str] = {
    "major-public-interest": "涉及重大公共利益",
    "major-social-impact": "可能造成重大社会影响或引发社会风险",
    "major-rights": "直接关系当事人或者第三人重大权益",
    "complex": "案件情况疑难复杂、涉及多个法律关系",
}


class DecisionKind(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1, max_length=200)
    label_zh: str = Field(min_length=1, max_length=200)
    penalty: bool = False  # an administrative penalty (行政处罚)


class Condition(BaseModel):
    """All given facts must hold for a rule to match (an empty condition never matches)."""

    model_config = ConfigDict(extra="forbid")
    marks: list[str] | None = None  # any of these marks on the case
    decision_kinds: list[str] | None = None
    penalty: bool | None = None
    hearing: bool | None = None
    min_fine_yuan: str | None = None  # a decimal amount: the proposed fine is at least this

    @model_validator(mode="after")
    def _check(self) -> Condition:
        if not any(v is not None for v in self.model_dump().values()):
            raise ValueError("a rule's condition names at least one fact")
        if self.min_fine_yuan is not None:
            _decimal(self.min_fine_yuan, "min_fine_yuan")
        for m in self.marks or []:
            if m not in MARKS:
                raise ValueError(f"unknown mark {m!r} (known: {', '.join(MARKS)})")
        return self


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=_KEY)
    label_zh: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=500)
    when: Condition
    higher_authority: bool = False  # reviewed by the higher authority (报上级)


class Material(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=_KEY)
    label: str = Field(min_length=1, max_length=200)
    label_zh: str = Field(min_length=1, max_length=200)
    when: Condition | None = None  # required only when this holds (e.g. a hearing took place)


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=_KEY)
    label: str = Field(min_length=1, max_length=200)
    label_zh: str = Field(min_length=1, max_length=200)


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(default=1, ge=1)
    title: str = ""
    review_working_days: int = Field(default=5, ge=1, le=60)
    decision_kinds: dict[str, DecisionKind]
    rules: list[Rule]
    materials: list[Material]
    checklist: list[Point] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Catalogue:
        for name, keys in (
            ("rule", [r.id for r in self.rules]),
            ("material", [m.key for m in self.materials]),
            ("checklist point", [p.key for p in self.checklist]),
        ):
            if len(keys) != len(set(keys)):
                raise ValueError(f"a {name} key appears twice")
        for r in self.rules:
            for kind in r.when.decision_kinds or []:
                if kind not in self.decision_kinds:
                    raise ValueError(f"rule {r.id} names unknown decision kind {kind!r}")
        if "evidence" not in {m.key for m in self.materials}:
            raise ValueError("the materials list must include 'evidence'")
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def point_keys(self) -> list[str]:
        return [p.key for p in self.checklist]


def _decimal(value: str, what: str) -> Decimal:
    try:
        d = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"{what}: {value!r} is not a decimal amount") from exc
    if not d.is_finite() or d < 0:
        raise ValueError(f"{what}: {value!r} is not a non-negative amount")
    return d


def parse_catalogue(data: Any) -> Catalogue:
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidCatalogue(
            _("legal review catalogue is not valid: {problems}").format(problems=problems)
        ) from exc


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    return parse_catalogue(json.loads(DEFAULT_CATALOGUE_FILE.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Facts:
    """What the catalogue classifies: the proposed decision and the case's marks."""

    decision_kind: str | None
    fine_yuan: Decimal | None
    hearing: bool
    marks: frozenset[str] = field(default_factory=frozenset)


def holds(cond: Condition, facts: Facts, catalogue: Catalogue) -> bool:
    checks: list[bool] = []
    if cond.marks is not None:
        checks.append(bool(facts.marks & set(cond.marks)))
    if cond.decision_kinds is not None:
        checks.append(facts.decision_kind in cond.decision_kinds)
    if cond.penalty is not None:
        kind = catalogue.decision_kinds.get(facts.decision_kind or "")
        checks.append(kind is not None and kind.penalty == cond.penalty)
    if cond.hearing is not None:
        checks.append(facts.hearing == cond.hearing)
    if cond.min_fine_yuan is not None:
        checks.append(facts.fine_yuan is not None and facts.fine_yuan >= Decimal(cond.min_fine_yuan))
    return bool(checks) and all(checks)


@dataclass(frozen=True)
class Classification:
    required: bool
    rule: Rule | None  # the first rule that matched, in catalogue order
    matched: list[str]  # every rule that matched
    higher_authority: bool
    catalogue_version: int

    def explain(self) -> str:
        """Why, in the active language. The catalogue names each rule in Chinese (``label_zh``) and
        describes it in English (``description``): a Chinese reader gets the Chinese name alone."""
        if self.rule is None:
            return _("no rule of the catalogue matches: legal review is not required")
        values = {"version": self.catalogue_version, "rule": self.rule.id, "label": self.rule.label_zh}
        if current_language() == "zh-CN":
            text = _("catalogue v{version} rule {rule}: {label}").format(**values)
        else:
            text = _("catalogue v{version} rule {rule} ({label}): {description}").format(
                **values, description=self.rule.description
            )
        if len(self.matched) > 1:
            text += _(" (also: {rules})").format(rules=", ".join(self.matched[1:]))
        if self.higher_authority:
            text += _("; reviewed by the higher authority")
        return text


def classify(catalogue: Catalogue, facts: Facts) -> Classification:
    matched = [r for r in catalogue.rules if holds(r.when, facts, catalogue)]
    return Classification(
        required=bool(matched),
        rule=matched[0] if matched else None,
        matched=[r.id for r in matched],
        higher_authority=any(r.higher_authority for r in matched),
        catalogue_version=catalogue.version,
    )


def required_materials(catalogue: Catalogue, facts: Facts) -> list[Material]:
    return [m for m in catalogue.materials if m.when is None or holds(m.when, facts, catalogue)]

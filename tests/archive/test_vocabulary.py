"""The procedure's vocabulary: every key the API uses has its Chinese and English name, as data."""

from __future__ import annotations

from enum import StrEnum

import pytest

from archive import vocabulary
from archive.accounts.models import Role
from archive.cases.models import CaseKind, CaseStatus, DocumentKind, LinkSource, Stage
from archive.i18n import LANGUAGES, use_language
from archive.media.ffmpeg.facts import MediaKind
from archive.media.models import ClockSource, MediaState
from archive.publicity.models import (
    DecisionCategory,
    InspectionOutcome,
    PartyKind,
    PerformanceStatus,
    Timeliness,
    WithdrawalGround,
)
from archive.publicity.models import DocumentKind as PublicDocumentKind
from retention.policy import FlagKind, Keep

# Each domain of archive/vocabulary.json and the enum whose values it names. A new enum people read
# (a legal-review status, a publicity state) gets a line here and its terms in the JSON.
DOMAINS: dict[str, type[StrEnum]] = {
    "stage": Stage,
    "doc_kind": DocumentKind,
    "case_kind": CaseKind,
    "case_status": CaseStatus,
    "link_source": LinkSource,
    "role": Role,
    "media_kind": MediaKind,
    "media_state": MediaState,
    "clock_source": ClockSource,
    "retention_keep": Keep,
    "retention_flag": FlagKind,
    "publicity_category": DecisionCategory,
    "party_kind": PartyKind,
    "withdrawal_ground": WithdrawalGround,
    "timeliness": Timeliness,
    "publicity_document": PublicDocumentKind,
    "performance_status": PerformanceStatus,
    "inspection_result": InspectionOutcome,
}


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_every_key_has_a_name_in_every_language(domain: str) -> None:
    missing = [
        f"{domain}.{member.value} [{lang}]"
        for member in DOMAINS[domain]
        for lang in LANGUAGES
        if not vocabulary.has(domain, member.value) or not vocabulary.term(domain, member.value).get(lang)
    ]
    assert not missing, f"add to archive/vocabulary.json: {missing}"


def test_names_as_in_the_national_document_formats() -> None:
    zh = {s: vocabulary.label("stage", s, "zh-CN") for s in Stage}
    assert [zh[s] for s in Stage] == ["立案", "调查", "取证", "审查", "决定", "送达", "执行"]
    assert vocabulary.label("doc_kind", DocumentKind.INQUIRY_TRANSCRIPT, "zh-CN") == "询问笔录"
    assert vocabulary.label("doc_kind", DocumentKind.INSPECTION_RECORD, "zh-CN") == "现场检查笔录"
    assert vocabulary.label("doc_kind", DocumentKind.DECISION, "zh-CN") == "行政处罚决定书"
    assert vocabulary.label("case_kind", CaseKind.ADMINISTRATIVE, "zh-CN") == "行政案件"
    assert vocabulary.label("stage", Stage.EVIDENCE_COLLECTION, "en") == "Evidence collection"
    # in procedural order, for a page's stage list
    assert list(vocabulary.labels("stage", "zh-CN")) == [s.value for s in Stage]


def test_labels_follow_the_active_language_and_fall_back() -> None:
    with use_language("zh-CN"):
        assert vocabulary.label("role", "records-manager") == "档案管理员"
    with use_language("en"):
        assert vocabulary.label("role", "records-manager") == "Records manager"
        assert vocabulary.label("stage", "no-such-stage") == "no-such-stage"  # the key, never an error
        assert vocabulary.label("no-such-domain", "x") == "x"
        assert vocabulary.label("stage", None) == ""


def test_a_domain_package_registers_its_own_terms() -> None:
    vocabulary.register("test_review", {"pending": {"zh-CN": "审核中", "en": "Under review"}})
    assert vocabulary.label("test_review", "pending", "zh-CN") == "审核中"
    with pytest.raises(ValueError, match="no label for zh-CN"):
        vocabulary.register("test_review", {"approved": {"en": "Approved"}})

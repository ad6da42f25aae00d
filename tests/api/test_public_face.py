"""The public face (/public/...): no authentication; published, redacted decisions only; no unpublished,
withdrawn or draft string and no internal id in any response (a crawler follows every link); cacheable
answers (ETag, 304); a strict CSP; a per-address rate limit shared by several API processes (429)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from archive.accounts.models import Role
from archive.config import get_settings
from archive.db import session_scope
from archive.publicity import decisions, documents, inspections, performance, report, roster
from archive.publicity.models import (
    DecisionCategory,
    DocumentKind,
    InspectionOutcome,
    PartyKind,
    PerformanceStatus,
    WithdrawalGround,
)
from archive.signing import Keyring, canonical_json
from migrations import migrate
from tests.archive.publicity.publicity_factories import case_with_decision, roster_entry, user
from tests.conftest import LiveAPI, free_port

# Strings that exist only in what must never be public.
UNPUBLISHED_PARTY = "孙悟空"
UNPUBLISHED_TEXT = "UNPUBLISHED-花果山水帘洞"
WITHDRAWN_TEXT = "WITHDRAWN-高老庄"
DRAFT_REDACTION = "DRAFT-REDACTION-流沙河"
DRAFT_DOCUMENT = "DRAFT-DOC-火焰山"
REVOKED_OFFICER = "白骨精"
PUBLISHED_TEXT = "PUBLISHED-通天河"
PERFORMANCE_NOTE = "PERFORMANCE-NOTE-五指山"  # internal, never public
INSPECTED_PERSON = "王小明"  # a natural person inspected: masked 王某某
PUBLISHED_INSPECTION = "PUBLISHED-INSPECTION-狮驼岭"
DRAFT_INSPECTION = "DRAFT-INSPECTION-女儿国"
WITHDRAWN_INSPECTION = "WITHDRAWN-INSPECTION-盘丝洞"


def _api(env: dict[str, str], tmp: Path, name: str, **extra: str) -> LiveAPI:
    port = free_port()
    api = LiveAPI(f"http://127.0.0.1:{port}", port, {**env, **extra}, tmp / name)
    api.tmp.mkdir(exist_ok=True)
    api.start()
    return api


@pytest.fixture
def seeded(engine: Engine, env: dict[str, str]) -> dict[str, Any]:
    """Published, unpublished, withdrawn and draft things side by side."""
    migrate(get_settings())
    keyring = Keyring(get_settings().resolved_key_dir())
    secret: list[str] = []
    with session_scope(engine) as s:
        admin, clerk, pub = (
            user(s, "adm", Role.ADMIN),
            user(s, "rm", Role.RECORDS_MANAGER),
            user(s, "pub", Role.PUBLISHER),
        )
        roster_entry(s, admin, "0815", name="赵刚")
        gone = roster_entry(s, admin, "0816", name=REVOKED_OFFICER)
        roster.revoke_entry(s, admin, gone.id or 0, "停职")

        def decision(number: str, text: str, party: str, kind: PartyKind = PartyKind.NATURAL_PERSON) -> Any:
            case_id, record_id = case_with_decision(s, clerk, number, body=f"决定书正文。{text}")
            secret.extend([case_id, record_id or ""])
            d = decisions.register(s, pub, decisions.DecisionInput(
                case_id=case_id, category=DecisionCategory.PENALTY, decided_on=date(2025, 3, 3),
                party_kind=kind, party_name=party, conclusion=f"罚款200元{text[:4]}"))  # fmt: skip
            secret.append(d.id)
            return d

        published = decision("P-1", PUBLISHED_TEXT, "某某有限公司", PartyKind.ORGANISATION)
        r = decisions.draft_redaction(s, pub, published.id)
        decisions.approve(s, pub, published.id, r.version, r.sha256)
        decisions.draft_redaction(s, pub, published.id, text=r.text + DRAFT_REDACTION)  # never approved
        performance.record(
            s, pub, published.id, PerformanceStatus.FULFILLED, date(2025, 3, 20), note=PERFORMANCE_NOTE
        )

        def inspection(summary: str) -> Any:
            row = inspections.register(s, pub, inspections.InspectionInput(
                item="食品经营监督检查", party_kind=PartyKind.NATURAL_PERSON, party_name=INSPECTED_PERSON,
                inspected_on=date(2025, 5, 6), result=InspectionOutcome.RECTIFY,
                summary=f"{INSPECTED_PERSON}：{summary}"))  # fmt: skip
            secret.append(row.id)
            return row

        shown = inspection(PUBLISHED_INSPECTION)
        inspections.approve(s, pub, shown.id, shown.sha256)
        inspection(DRAFT_INSPECTION)
        gone = inspection(WITHDRAWN_INSPECTION)
        inspections.approve(s, pub, gone.id, gone.sha256)
        inspections.withdraw(s, pub, gone.id, "有误")

        decision("U-1", UNPUBLISHED_TEXT, UNPUBLISHED_PARTY)
        withdrawn = decision("W-1", WITHDRAWN_TEXT, "猪八戒")
        r = decisions.draft_redaction(s, pub, withdrawn.id)
        decisions.approve(s, pub, withdrawn.id, r.version, r.sha256)
        decisions.withdraw(s, pub, withdrawn.id, WithdrawalGround.REVOKED, "依法撤销")

        doc = documents.write(s, pub, "remedies", DocumentKind.REMEDIES, "救济渠道", "可申请行政复议。")
        documents.approve(s, pub, "remedies", doc.version, doc.sha256)
        documents.write(s, pub, "remedies", DocumentKind.REMEDIES, "救济渠道", DRAFT_DOCUMENT)
        row = report.draft(s, pub, 2025, keyring)
        report.publish(
            s,
            pub,
            2025,
            row.version,
            __import__("hashlib").sha256(canonical_json(row.body)).hexdigest(),
            keyring,
        )
    return {
        "secret": secret,
        "published_ref": published.ref,
        "published_record": published.record_id,
        "withdrawn_ref": withdrawn.ref,
    }


@pytest.fixture
def public_api(env: dict[str, str], tmp_path: Path, seeded: dict[str, Any]) -> Iterator[LiveAPI]:
    api = _api(env, tmp_path, "a", CUSTODY_PUBLIC_RATE_LIMIT="300/minute")
    yield api
    api.stop()


FORBIDDEN = [
    *(UNPUBLISHED_PARTY, UNPUBLISHED_TEXT, WITHDRAWN_TEXT, DRAFT_REDACTION, DRAFT_DOCUMENT, REVOKED_OFFICER),
    *(PERFORMANCE_NOTE, INSPECTED_PERSON, DRAFT_INSPECTION, WITHDRAWN_INSPECTION),
    *("猪八戒", "-q7", "user:", "system:", "case_id", "record_id"),  # people, accounts, internal keys
]


def test_no_unpublished_string_reaches_any_public_response(
    public_api: LiveAPI, seeded: dict[str, Any]
) -> None:
    base = public_api.url
    start = [
        "/public/", "/public/api/decisions", "/public/api/decisions?limit=100", "/public/api/roster",
        "/public/api/documents", "/public/api/reports/2025", "/public/decisions?year=2025",
        "/public/api/inspections",
        "/public/decisions?category=penalty", f"/public/api/decisions/{seeded['published_ref']}",
        f"/public/api/decisions/{seeded['withdrawn_ref']}",
    ]  # fmt: skip
    seen: set[str] = set()
    queue = list(start)
    bodies: dict[str, str] = {}
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        r = httpx.get(base + path)
        assert r.status_code == 200, (path, r.status_code)
        bodies[path] = r.text
        for link in re.findall(r'href="(/public/[^"]*)"', r.text):
            queue.append(link.replace("&amp;", "&"))
    assert len(seen) >= 15 and "/public/decisions/" + seeded["published_ref"] in seen
    for path, text in bodies.items():
        for needle in [*FORBIDDEN, *seeded["secret"]]:
            assert needle not in text, (needle, path)
    assert PUBLISHED_TEXT in bodies["/public/api/decisions"]
    assert "已履行" in bodies[f"/public/api/decisions/{seeded['published_ref']}"]
    for path in ("/public/api/inspections", "/public/inspections"):
        assert PUBLISHED_INSPECTION in bodies[path] and "王某某" in bodies[path], path
    assert "赵刚" in bodies["/public/api/roster"]
    # What is not public is not found (and says nothing about why).
    for path in (
        "/public/api/decisions/nope",
        "/public/decisions/nope",
        "/public/api/reports/2024",
        "/public/documents/nope",
    ):
        assert httpx.get(base + path).status_code == 404


def test_answers_are_cacheable_and_locked_down(public_api: LiveAPI) -> None:
    for path in ("/public/decisions", "/public/api/decisions", "/public/static/public.css"):
        r = httpx.get(public_api.url + path)
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp and "unsafe" not in csp
        assert "frame-ancestors 'none'" in csp and r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "public, no-cache"  # kept, revalidated: withdrawals show at once
        etag = r.headers["etag"]
        again = httpx.get(public_api.url + path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    zh = {"Accept-Language": "zh-CN,zh;q=0.9"}
    html = httpx.get(public_api.url + "/public/decisions", headers=zh).text
    assert "<script" not in html and 'lang="zh-CN"' in html and "行政执法决定" in html


def test_rate_limit_per_address_is_shared_by_api_processes(
    env: dict[str, str], tmp_path: Path, seeded: dict[str, Any]
) -> None:
    a = _api(env, tmp_path, "a", CUSTODY_PUBLIC_RATE_LIMIT="10/minute")
    b = _api(env, tmp_path, "b", CUSTODY_PUBLIC_RATE_LIMIT="10/minute")
    try:
        codes = [httpx.get(f"{(a if n % 2 else b).url}/public/api/decisions").status_code for n in range(10)]
        assert codes == [200] * 10
        r = httpx.get(f"{a.url}/public/api/decisions")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert httpx.get(f"{b.url}/public/decisions").status_code == 429
        # The authenticated API is not limited by the public face's counter.
        assert httpx.get(f"{a.url}/api/v1/keys").status_code == 200
    finally:
        a.stop()
        b.stop()


def test_published_report_verifies_with_the_public_key(public_api: LiveAPI) -> None:
    import base64

    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    signed = httpx.get(f"{public_api.url}/public/api/reports/2025").json()
    keys = {k["key_id"]: k for k in httpx.get(f"{public_api.url}/api/v1/keys").json()["keys"]}
    key = load_pem_public_key(keys[signed["signature"]["key_id"]]["public_key_pem"].encode())
    key.verify(base64.b64decode(signed["signature"]["signature"]), canonical_json(signed["body"]))  # type: ignore[union-attr]
    page = httpx.get(f"{public_api.url}/public/reports/2025", headers={"Accept-Language": "zh-CN"}).text
    assert "2025年度行政执法总体情况" in page and signed["signature"]["key_id"] in page


def test_a_decision_marked_restricted_after_publication_leaves_the_public_face_at_once(
    public_api: LiveAPI, seeded: dict[str, Any], engine: Engine
) -> None:
    """Issue 13's marks hide a published decision without changing its row: the cached answers of
    the public face must not keep serving it."""
    from archive.restricted import services as restricted
    from archive.restricted.models import MarkCreate, Sensitivity, SubjectKind

    feed = public_api.url + "/public/api/decisions"
    page = public_api.url + "/public/decisions"
    ref = seeded["published_ref"]
    assert ref in httpx.get(feed).text and ref in httpx.get(page).text  # rendered and cached now
    etag = httpx.get(feed).headers["etag"]
    with session_scope(engine) as s:
        rm = user(s, "rm2", Role.RECORDS_MANAGER)
        data = MarkCreate(
            subject_kind=SubjectKind.RECORD,
            subject_id=seeded["published_record"],
            sensitivity=Sensitivity.TRADE_SECRET,
            reason="商业秘密",
        )
        restricted.mark(s, rm, data)
    again = httpx.get(feed, headers={"If-None-Match": etag})
    assert again.status_code == 200 and ref not in again.text
    assert ref not in httpx.get(page).text

"""The OpenAPI document tells the truth (issue 10, finding 7): Schemathesis, in process against the ASGI
app (``schemathesis.openapi.from_asgi``), calls every operation as each role and as nobody, with data
seeded so the calls reach real code (a case with a record, an archived recording linked to it, an
unfinished upload, a hold, a legal-review submission, a party, a restricted mark, a copy-out request, a
roster entry, a publicity decision with its performance, a random-inspection result, a checkpoint). It
fails on any 5xx and on any answer the document does not describe: an undocumented status, media type
or header, or a body off its schema.

Two passes. The role pass sends every operation once as each of the eight roles and as nobody (the
simplest valid request naming seeded things), so each refusal and admission is held to the document.
The input pass sends ``EXAMPLES`` valid and invalid requests per operation as a role the role pass saw
admitted. Bounded: Hypothesis derandomized, no shrinking; the figures (requests and seconds per pass,
the slowest operations) are printed. Every failure is collected, then reported at once.
``CUSTODY_FUZZ_EXAMPLES=25`` runs a deeper input pass by hand.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from api.app import create_app
from archive.accounts import services as accounts
from archive.accounts.models import Role
from archive.config import get_settings
from archive.db import make_engine, session_scope
from archive.ingest import pipeline
from archive.ledger import services as ledger
from archive.media.models import Media
from archive.models import Event
from archive.signing import Keyring
from tests.archive.ingest.test_pipeline import drive, receive
from tests.archive.publicity.publicity_factories import DECISION_TEXT, LEGAL_PROPOSAL
from tests.conftest import TEMPLATE_DB, _admin_conninfo, make_env

# Hypothesis examples per operation in the input pass (the role pass sends one per operation and role).
EXAMPLES = int(os.environ.get("CUSTODY_FUZZ_EXAMPLES", "4"))  # more for a deeper run by hand
ROLES: dict[str, str | None] = {
    "officer": "0815",
    "reviewer": "rev1",
    "auditor": "aud",
    "records-manager": "clerk",
    "admin": "root",
    "legal-reviewer": "legal1",
    "approver": "appr",
    "publisher": "pub",
    "anonymous": None,
}


@schemathesis.check
def safe_headers(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every answer says nosniff; every API answer says no-store unless its route chose (api/headers.py)."""
    assert response.headers.get("x-content-type-options") == ["nosniff"], "no X-Content-Type-Options: nosniff"
    if case.operation.path.startswith("/api/"):
        assert response.headers.get("cache-control"), "an API answer without Cache-Control"
    return None


CHECKS = [
    safe_headers,
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# One worker runs the whole module (make test runs pytest-xdist with --dist loadgroup): the seeded world is
# built once, and the input pass uses the roles the role pass saw admitted.
pytestmark = pytest.mark.xdist_group("schema_fuzz")
# tus PATCH bodies and CSV imports are bytes as far as generation goes.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
schemathesis.serializer.alias("text/csv", "text/plain")
# Operations not fuzzed, and why. None so far: tus PATCH is fuzzed with small bodies against a seeded
# upload (the streaming of large bodies is tests/api/test_uploads.py's), case attachments with small files,
# exports and verification against the small seeded archive.
EXCLUDED: dict[tuple[str, str], str] = {}


@dataclass
class World:
    app: Any
    schema: Any
    client: asgi.ASGIClient
    tokens: dict[str, str]
    operations: list[tuple[Any, Any]] = field(default_factory=list)  # (operation, its strategy)
    ids: dict[str, list[Any]] = field(default_factory=dict)  # path parameter -> seeded values
    body_ids: dict[str, list[Any]] = field(default_factory=dict)  # body field -> seeded values
    admitted: dict[str, str] = field(default_factory=dict)  # operation -> the first role not refused


class _Dispatcher:
    """The app's task sender: collects, sends nothing (no worker here)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, ...]] = []

    def send(self, step: str, media_id: str, sha256: str) -> None:
        self.sent.append((step, media_id, sha256))

    def send_task(self, name: str, *args: str) -> None:
        self.sent.append((name, *args))


def _photo(tmp: Path) -> Path:
    out = tmp / "photo.jpg"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=1",
            "-frames:v",
            "1",
            str(out),
        ],
        check=True,
    )
    return out


@pytest.fixture(scope="module")
def world(
    services: dict[str, str], pg_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("fuzz")
    name = f"custody_fuzz_{uuid.uuid4().hex[:10]}"
    admin = _admin_conninfo(pg_template)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB} OWNER custody")
    url = make_url(pg_template).set(database=name).render_as_string(hide_password=False)
    with pytest.MonkeyPatch.context() as mp:
        env = make_env(services, url, tmp, mp)
        next(env)
        # The public face's per-address limit would answer 429 to most of the run (documented, but
        # then nothing behind it is reached).
        mp.setenv("CUSTODY_PUBLIC_RATE_LIMIT", "1000000/minute")
        # Likewise the sign-in throttle: the anonymous pass alone fails 141 times from one address.
        mp.setenv("CUSTODY_AUTH_FAIL_MAX_PER_ADDR", "100000")
        mp.setenv("CUSTODY_AUTH_FAIL_MAX_PER_ACCOUNT", "100000")
        get_settings.cache_clear()
        app = create_app()
        app.state.dispatcher = _Dispatcher()
        with asgi.get_client(app) as client:
            tokens = _users(url)
            w = World(app, schemathesis.openapi.from_asgi("/openapi.json", app), client, tokens)
            _seed(w, url, tmp)
            for result in w.schema.get_all_operations():
                op = result.ok()
                if (op.method.upper(), op.path) not in EXCLUDED:
                    # Positive data first (Hypothesis tries the simplest choice first), then data off
                    # the schema; built once, so each role reuses the compiled strategies.
                    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
                    w.operations.append((op, st.one_of(*(op.as_strategy(m) for m in modes))))
            yield w
        asgi.shutdown_lifespans()
        next(env, None)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _users(url: str) -> dict[str, str]:
    engine = make_engine(url)
    tokens = {}
    with session_scope(engine) as s:
        for role, user in ROLES.items():
            if user is not None:
                tokens[role] = accounts.add_user(s, user, Role(role))[1]
    engine.dispose()
    return tokens


def _seed(w: World, url: str, tmp: Path) -> None:
    """A small archive in which each kind of id a path names exists."""
    settings_ = get_settings()
    engine = make_engine(url)
    ctx = pipeline.Context(
        engine=engine,
        store=w.app.state.ctx.store,
        keyring=Keyring(settings_.resolved_key_dir()),
        settings=settings_,
    )
    media = receive(ctx, _photo(tmp))
    drive(ctx, media)
    with Session(engine) as s:
        got = s.get(Media, media.id)
        assert got is not None and got.state == "ready", got

    def call(method: str, path: str, role: str, status: int = 200, **kw: Any) -> Any:
        r = w.client.request(method, path, headers={"Authorization": f"Bearer {w.tokens[role]}"}, **kw)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        return r.json() if r.content else None

    at = datetime(2024, 6, 10, 14, 0, tzinfo=UTC)
    case = call(
        "POST",
        "/api/v1/cases",
        "records-manager",
        201,
        json={"number": "FUZZ-1", "title": "Traffic stop", "kind": "administrative", "reviewers": ["rev1"]},
    )
    cid = case["id"]
    call(
        "POST",
        f"/api/v1/cases/{cid}/officers",
        "records-manager",
        201,
        json={"badge": "0815", "reason": "on duty"},
    )
    record_body = {
        "stage": "investigation",
        "doc_kind": "inquiry-transcript",
        "author": "0815",
        "title": "Inquiry",
        "officers": ["0815"],
        "occurred_from": at.isoformat(),
        "occurred_to": (at + timedelta(minutes=20)).isoformat(),
        "body": "The driver said he was late.",
    }
    record = call("POST", f"/api/v1/cases/{cid}/records", "records-manager", 201, json=record_body)["record"]
    call(
        "POST",
        f"/api/v1/cases/{cid}/media",
        "records-manager",
        201,
        json={"media_id": media.id, "reason": "seen"},
    )
    hold = call(
        "POST", f"/api/v1/media/{media.id}/holds", "records-manager", 201, json={"reason": "court order"}
    )
    submission = call(
        "POST", f"/api/v1/cases/{cid}/legal-review/submissions", "records-manager", 201, json=LEGAL_PROPOSAL
    )
    decision_record = call(
        "POST",
        f"/api/v1/cases/{cid}/records",
        "records-manager",
        201,
        json={
            "stage": "decision",
            "doc_kind": "decision",
            "author": "0815",
            "title": "行政处罚决定书",
            "officers": ["0815"],
            "occurred_from": at.isoformat(),
            "occurred_to": (at + timedelta(minutes=20)).isoformat(),
            "body": DECISION_TEXT,
        },
    )["record"]
    party = call(
        "POST",
        f"/api/v1/cases/{cid}/parties",
        "records-manager",
        201,
        json={
            "kind": "person",
            "name": "赵六",
            "id_doc_type": "resident-id",
            "id_number": "11010519491231002X",
        },
    )
    second = call(
        "POST",
        "/api/v1/cases",
        "records-manager",
        201,
        json={"number": "FUZZ-2", "title": "Noise", "kind": "administrative", "reviewers": ["rev1"]},
    )
    secret = call(
        "POST",
        f"/api/v1/cases/{second['id']}/records",
        "records-manager",
        201,
        json={**record_body, "body": "A minor's statement."},
    )["record"]
    mark = call(
        "POST",
        "/api/v1/restricted/marks",
        "records-manager",
        201,
        json={
            "subject_kind": "record",
            "subject_id": secret["record_id"],
            "sensitivity": "privacy",
            "reason": "minor",
        },
    )
    grant = call(
        "POST",
        "/api/v1/restricted/grants",
        "records-manager",
        201,
        json={
            "user_name": "rev1",
            "subject_kind": "case",
            "subject_id": second["id"],
            "reason": "handles it",
        },
    )
    copyout = call(
        "POST",
        "/api/v1/copyout",
        "reviewer",
        201,
        json={"kind": "case-export", "subject_id": cid, "purpose": "court"},
    )
    roster = call(
        "POST",
        "/api/v1/publicity/roster",
        "admin",
        201,
        json={
            "officer": "0815",
            "name": "赵刚",
            "unit": "交警大队",
            "post": "民警",
            "badge_no": "J0815",
            "certificate_no": "C-0815",
            "category": "公安",
            "area": "某某县",
            "valid_from": "2020-01-01",
            "valid_to": "2030-12-31",
        },
    )
    decision = call(
        "POST",
        "/api/v1/publicity/decisions",
        "publisher",
        201,
        json={
            "case_id": cid,
            "category": "penalty",
            "decided_on": "2025-03-03",
            "party_kind": "natural-person",
            "party_name": "张三",
            "conclusion": "罚款人民币200元",
            "document_no": "某公(交)决字〔2025〕12号",
            "persons": ["赵刚"],
        },
    )
    # A random-inspection result (A10), a draft the publisher may approve or (once published) withdraw.
    inspection = call(
        "POST",
        "/api/v1/publicity/inspections",
        "publisher",
        201,
        json={
            "item": "道路运输企业安全生产监督检查",
            "party_kind": "natural-person",
            "party_name": "王小明",
            "inspected_on": "2025-05-06",
            "result": "rectify",
            "summary": "消防通道堵塞，已责令整改。",
        },
    )
    call(
        "POST",
        f"/api/v1/publicity/decisions/{decision['id']}/performance",
        "publisher",
        201,
        json={"status": "not-due", "as_of": "2025-03-03", "note": "期限内"},
    )
    # An upload the officer has begun and not finished.
    meta = {
        "filename": "b.mp4",
        "officer": "0815",
        "device": "BC-4711",
        "sha256": hashlib.sha256(b"x").hexdigest(),
    }
    r = w.client.post(
        "/api/v1/uploads",
        headers={
            "Authorization": f"Bearer {w.tokens['officer']}",
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "10",
            "Upload-Metadata": ",".join(
                f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items()
            ),
        },
    )
    assert r.status_code == 201, r.text
    upload_id = r.headers["Location"].rsplit("/", 1)[-1]
    with session_scope(engine) as s:
        ledger.sign_checkpoint(s, ctx.keyring)
        event_id = s.exec(select(Event.id).order_by(Event.id)).first()
    engine.dispose()
    # /healthz answers 503 without a live worker (documented); say one is alive, as a worker would.
    w.app.state.redis.set("custody:worker-heartbeat:fuzz", "1", ex=3600)
    w.ids = {
        "case_id": [cid, second["id"]],
        "record_id": [record["record_id"], decision_record["record_id"], secret["record_id"]],
        "media_id": [media.id],
        "upload_id": [upload_id],
        "badge": ["0815"],
        "hold_id": [hold["holds"][0]["id"]],
        "submission_id": [submission["id"]],
        "party_id": [party["id"]],
        "mark_id": [mark["id"]],
        "grant_id": [grant["id"]],
        "request_id": [copyout["id"]],
        "entry_id": [roster["id"]],
        "decision_id": [decision["id"]],
        "inspection_id": [inspection["id"]],
        "event_id": [event_id],
        "year": [2025],
        "version": [1],
        "kind": ["obstruction"],
    }
    w.body_ids = {"media_id": [media.id], "case": [cid], "case_id": [cid], "subject_id": [cid, media.id]}


def _seeded(w: World, case: Any, data: st.DataObject) -> None:
    """Most examples (the first one always) name seeded things, else every call would be a 404 before
    any real code runs."""
    if data.draw(st.integers(0, 3), label="unseeded") == 3:
        return
    for name in list(case.path_parameters or {}):
        if name in w.ids:
            case.path_parameters[name] = data.draw(st.sampled_from(w.ids[name]), label=name)
    if isinstance(case.body, dict):
        for key in list(case.body):
            if key in w.body_ids:
                case.body[key] = data.draw(st.sampled_from(w.body_ids[key]), label=key)


def _describe(exc: BaseException) -> str:
    found = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
    return "; ".join(
        f"{getattr(f, 'title', type(f).__name__)}: {' '.join(str(getattr(f, 'message', f)).split())[:240]}"
        for f in found
    )


REFUSED = {401, 403, 404}


def _fuzz(w: World, role: str, ops: list[tuple[Any, Any]], examples: int, failures: list[str]) -> int:
    """Run ``examples`` Hypothesis examples of each operation as ``role``; collect what fails."""
    token = w.tokens.get(role)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    calls = 0
    for op, strategy in ops:
        calls += _fuzz_one(w, role, op, strategy, examples, headers, failures)
    return calls


def _fuzz_one(
    w: World, role: str, op: Any, strategy: Any, examples: int, headers: dict[str, str], failures: list[str]
) -> int:
    seen: set[str] = set()
    label = f"{op.method.upper()} {op.path}"
    calls = 0

    def fail(key: str, case: Any, text: str) -> None:
        if key not in seen:
            seen.add(key)
            failures.append(f"[{role}] {key}\n    {case.as_curl_command()[:400]}\n    {text[:300]}")

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        nonlocal calls
        _seeded(w, case, data)
        calls += 1
        try:
            response = case.call(session=w.client, headers=headers)
        except Exception as exc:  # noqa: BLE001 - what escapes the app is a 500 to a client
            fail(f"{label}: raised {type(exc).__name__}: {str(exc)[:200]}", case, "")
            return
        if response.status_code not in REFUSED:
            w.admitted.setdefault(label, role)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, FailureGroup) as exc:
            fail(f"{label}: {response.status_code} {_describe(exc)}", case, response.text)

    run()
    return calls


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_gets_documented_answers(world: World, role: str) -> None:
    """Every operation, once, as each role and as nobody: the simplest valid request naming seeded
    things, so each refusal (401, 403, 404) and each admission is held to the document."""
    failures: list[str] = []
    start = time.monotonic()
    calls = _fuzz(world, role, world.operations, 1, failures)
    print(f"\nschema fuzz: {role}: {calls} requests in {time.monotonic() - start:.1f} s")  # noqa: T201 - the figures, as the benches print theirs
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)


def test_inputs_get_documented_answers(world: World) -> None:
    """Every operation, ``EXAMPLES`` times (valid and invalid input, mostly naming seeded things), as the
    first role the role pass saw admitted (else admin): never a 5xx, never an undocumented answer."""
    failures: list[str] = []
    start = time.monotonic()
    calls = 0
    slowest: list[tuple[float, str]] = []
    for op, strategy in world.operations:
        label = f"{op.method.upper()} {op.path}"
        t0 = time.monotonic()
        calls += _fuzz(world, world.admitted.get(label, "admin"), [(op, strategy)], EXAMPLES, failures)
        slowest.append((time.monotonic() - t0, label))
    top = ", ".join(f"{label} {t:.1f} s" for t, label in sorted(slowest, reverse=True)[:5])
    print(f"\nschema fuzz: slowest operations: {top}")  # noqa: T201 - the figures
    print(f"\nschema fuzz: inputs: {calls} requests in {time.monotonic() - start:.1f} s")  # noqa: T201 - the figures, as the benches print theirs
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)

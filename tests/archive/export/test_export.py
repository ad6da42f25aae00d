"""Evidence export: the standalone verifier passes a fresh export and names what is wrong with a
tampered one, run as a separate process in a clean virtual environment (only `cryptography`)."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from archive.accounts import services as accounts
from archive.accounts.models import Role, User
from archive.cases import services as cases
from archive.cases.models import CaseKind, DocumentKind, Stage
from archive.db import session_scope
from archive.export.services import VERIFIER
from archive.ingest import pipeline
from archive.media.models import Media
from archive.models import Event
from tests.archive.audit.test_audit import archived, ctx, samples  # noqa: F401  (fixtures)
from tests.conftest import ROOT, LiveAPI


def _load_verifier() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_export", VERIFIER)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


V = _load_verifier()
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=3000, deadline=None)
@given(JSON)
def test_standalone_canonical_json_matches_rfc8785(value: Any) -> None:
    assert V.canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=20000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_standalone_number_serialisation_matches_rfc8785(x: float) -> None:
    assert V.canonical_json(x) == rfc8785.dumps(x)


def test_rfc8785_appendix_numbers() -> None:
    # IEEE 754 bit patterns -> ECMAScript strings (edge cases of RFC 8785 section 3.2.2.3).
    cases = {
        "0000000000000000": "0",
        "8000000000000000": "0",
        "0000000000000001": "5e-324",
        "8000000000000001": "-5e-324",
        "7fefffffffffffff": "1.7976931348623157e+308",
        "4340000000000000": "9007199254740992",
        "444b1ae4d6e2ef50": "1e+21",
        "3eb0c6f7a0b5ed8d": "0.000001",
        "3eb0c6f7a0b5ed8c": "9.999999999999997e-7",
        "41b3de4355555555": "333333333.3333333",
    }
    for bits, want in cases.items():
        x = struct.unpack(">d", bytes.fromhex(bits))[0]
        assert V.canonical_json(x).decode() == want


@pytest.fixture(scope="session")
def clean_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with `cryptography` and nothing else: what a court's laptop may have."""
    venv = tmp_path_factory.mktemp("clean-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "cryptography"], check=True, timeout=600)
    frozen = subprocess.run(
        [str(py), "-m", "pip", "freeze"], capture_output=True, text=True, check=True
    ).stdout
    assert {ln.split("==")[0].lower() for ln in frozen.split()} <= {"cryptography", "cffi", "pycparser"}
    return py


CASE = "CASE-2026-17"
RECORD_BODY = "Officer 0815 stopped the car at 14:02. <script>alert(1)</script> & the driver left."


@pytest.fixture
def case_id(archived: list[Media], ctx: pipeline.Context) -> str:  # noqa: F811
    """A case with both archived items linked, reviewer rev1 assigned, and a record in two versions."""
    with session_scope(ctx.engine) as s:
        clerk, _ = accounts.add_user(s, "clerk", Role.RECORDS_MANAGER)
        accounts.add_user(s, "rev1", Role.REVIEWER)
        case = cases.create_case(
            s, clerk, cases.CaseInput(CASE, "Traffic stop", CaseKind.CRIMINAL, reviewers=["rev1"])
        )
        for m in archived:
            cases.link_media(s, clerk, case.id, m.id, "the stop, both angles", addr="10.0.0.7")
        when = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
        data = cases.RecordInput(
            Stage.INVESTIGATION,
            DocumentKind.REPORT,
            "0815",
            when,
            when + timedelta(minutes=20),
            "first draft",
        )
        rec, _ = cases.add_record(s, clerk, case.id, data)
        cases.add_record(s, clerk, case.id, replace(data, body=RECORD_BODY), record_id=rec.record_id)
        return case.id


def export_cli(
    env: dict[str, str], out: Path, case: str, *media_ids: str
) -> subprocess.CompletedProcess[str]:
    args = [a for m in media_ids for a in ("--media", m)]
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "export", case, "--out", str(out), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def run_verifier(python: Path, export: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Unzip only verify_export.py (from the first, intact export), then run it in its own process
    with nothing of ours on the path (-I: isolated mode, no cwd or user site on sys.path)."""
    script = workdir / "verify_export.py"
    if not script.exists():
        with zipfile.ZipFile(export) as zf:
            script.write_bytes(zf.read("verify_export.py"))
    return subprocess.run(
        [str(python), "-I", str(script), str(export)],
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=300,
    )


def rewrite(src: Path, dst: Path, change: dict[str, bytes | None]) -> None:
    """Copy an export, replacing (or with None dropping) some members, as a forger would."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in change:
                data = change[info.filename]
                if data is not None:
                    zout.writestr(info.filename, data)
            else:
                zout.writestr(info, zin.read(info.filename))


def test_fresh_export_verifies_offline_and_tampered_ones_fail(
    archived: list[Media],  # noqa: F811
    ctx: pipeline.Context,  # noqa: F811
    case_id: str,
    env: dict[str, str],
    clean_python: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "case.zip"
    made = export_cli(env, out, CASE)  # by case number: every linked item, every record
    assert made.returncode == 0, made.stderr
    assert "2 media items, 2 record versions" in made.stdout
    ok = run_verifier(clean_python, out, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "RESULT: OK" in ok.stdout
    for m in archived:
        assert f"media {m.id}: manifest signature verifies" in ok.stdout
        assert f"media {m.id}: original is the signed file" in ok.stdout
        assert f"media {m.id}: custody history included" in ok.stdout
    assert "log checkpoint (size" in ok.stdout and "is in the signed log" in ok.stdout
    assert f"case {CASE} ({case_id}): custody history included" in ok.stdout
    assert f"case {CASE} ({case_id}): 2 text record versions" in ok.stdout
    with zipfile.ZipFile(out) as zf:
        records = json.loads(zf.read("records/records.json"))
        page = zf.read("records/records.html").decode()
        case_doc = json.loads(zf.read("case.json"))
        log_file = zf.read("log/events.json")
        logged = {(e["leaf"]["action"], e["leaf"].get("v")) for e in json.loads(log_file)}
    assert [(r["version"], r["body"]) for r in records] == [(1, "first draft"), (2, RECORD_BODY)]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; the driver" in page and "<script>" not in page
    assert case_doc["reviewers"] == ["rev1"] and len(case_doc["links"]) == 2
    assert {"case.create", "record.create", "record.version"} <= {a for a, _ in logged}
    # The clerk's link is proven with a commitment to the clerk's address, not the address (issue 10).
    assert ("case.link", 2) in logged and b"10.0.0.7" not in log_file
    # The export itself is on record, in the case's history and in each item's.
    with Session(ctx.engine) as s:
        assert s.exec(select(Event).where(Event.action == "export.create")).one().details["case"] == case_id
        assert s.exec(select(Event).where(Event.action == "case.export")).one().subject_id == case_id
        assert len(list(s.exec(select(Event).where(Event.action == "media.export")))) == 2

    victim = archived[0].id
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        original = next(n for n in names if n.startswith(f"media/{victim}/original"))
        data = bytearray(zf.read(original))
        events_doc = json.loads(zf.read("log/events.json"))
        manifest = json.loads(zf.read(f"media/{victim}/manifest.json"))

    # Truncated in transit.
    cut = tmp_path / "truncated.zip"
    cut.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    r = run_verifier(clean_python, cut, tmp_path)
    assert r.returncode == 1 and "truncated" in r.stdout, r.stdout

    # One byte of the original changed.
    data[len(data) // 3] ^= 0xFF
    flipped = tmp_path / "flipped.zip"
    rewrite(out, flipped, {original: bytes(data)})
    r = run_verifier(clean_python, flipped, tmp_path)
    assert r.returncode == 1
    assert (
        f"FAIL  {original}: sha256" in r.stdout and f"FAIL  media {victim}: original has sha256" in r.stdout
    )

    # A custody event rewritten (who did it), another dropped.
    events_doc[0]["leaf"]["actor"] = "user:nobody"
    edited = tmp_path / "edited-log.zip"
    rewrite(out, edited, {"log/events.json": json.dumps(events_doc).encode()})
    r = run_verifier(clean_python, edited, tmp_path)
    assert r.returncode == 1
    assert (
        f"FAIL  event {events_doc[0]['leaf']['id']} ({events_doc[0]['leaf']['action']}) "
        "is NOT in the signed log" in r.stdout
    )
    assert "FAIL  log/events.json: sha256" in r.stdout

    # A text record rewritten after the export.
    records[1]["body"] = "The driver was calm."
    rewritten = tmp_path / "records.zip"
    rewrite(out, rewritten, {"records/records.json": json.dumps(records).encode()})
    r = run_verifier(clean_python, rewritten, tmp_path)
    assert r.returncode == 1 and "FAIL  records/records.json: sha256" in r.stdout

    # A manifest replaced (officer changed) and a file dropped.
    manifest["manifest"]["officer"] = "4242"
    swapped = tmp_path / "swapped.zip"
    rewrite(out, swapped, {f"media/{victim}/manifest.json": json.dumps(manifest).encode(), original: None})
    r = run_verifier(clean_python, swapped, tmp_path)
    assert r.returncode == 1
    assert f"FAIL  media {victim}: manifest signature does not verify" in r.stdout
    assert f"FAIL  {original} is listed in the index but missing" in r.stdout


def test_reviewer_exports_an_assigned_case_through_the_api(
    archived: list[Media],  # noqa: F811
    ctx: pipeline.Context,  # noqa: F811
    case_id: str,
    live_api: LiveAPI,
    make_user: Any,
    clean_python: Path,
    tmp_path: Path,
) -> None:
    officer = make_user("0816", "officer")
    stranger = make_user("rev2", "reviewer")  # a reviewer not assigned to this case
    with session_scope(ctx.engine) as s:
        _, reviewer = accounts.add_user(s, "rev1b", Role.REVIEWER)
        clerk = s.exec(select(User).where(User.name == "clerk")).one()
        cases.set_reviewers(s, clerk, case_id, ["rev1", "rev1b"])
    body = {"case": case_id, "media": [archived[1].id]}
    url = f"{live_api.url}/api/v1/exports"
    denied = httpx.post(url, json=body, headers={"Authorization": f"Bearer {officer}"})
    assert denied.status_code == 403
    hidden = httpx.post(url, json=body, headers={"Authorization": f"Bearer {stranger}"})
    assert hidden.status_code == 404  # another reviewer's case does not exist for them...
    with Session(ctx.engine) as s:  # ...but the attempt is on record
        refused = s.exec(select(Event).where(Event.action == "access.denied")).all()
    assert [e.actor for e in refused] == ["user:0816", "user:rev2"]
    r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {reviewer}"}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    out = tmp_path / "api-export.zip"
    out.write_bytes(r.content)
    v = run_verifier(clean_python, out, tmp_path)
    assert v.returncode == 0, v.stdout
    assert f"media {archived[1].id}: custody history included" in v.stdout
    assert f"media {archived[0].id}" not in v.stdout  # only the item asked for
    assert "2 text record versions" in v.stdout


def test_the_log_file_holds_only_this_cases_events(
    archived: list[Media],  # noqa: F811
    ctx: pipeline.Context,  # noqa: F811
    case_id: str,
    env: dict[str, str],
    clean_python: Path,
    tmp_path: Path,
) -> None:
    """Issue 10: the export's log named other cases (the same recording linked and watched there)."""
    with session_scope(ctx.engine) as s:
        clerk = s.exec(select(User).where(User.name == "clerk")).one()
        other = cases.create_case(s, clerk, cases.CaseInput("OTHER-9", "Unrelated", CaseKind.CRIMINAL))
        cases.link_media(s, clerk, other.id, archived[0].id, "same car", addr="10.9.9.9")
        other_id = other.id
    out = tmp_path / "case.zip"
    made = export_cli(env, out, CASE)
    assert made.returncode == 0, made.stderr
    with zipfile.ZipFile(out) as zf:
        evs = json.loads(zf.read("log/events.json"))
    assert evs and all((e["leaf"]["details"] or {}).get("case") in (None, case_id) for e in evs)
    assert other_id not in json.dumps(evs)
    ok = run_verifier(clean_python, out, tmp_path)
    assert ok.returncode == 0 and "RESULT: OK" in ok.stdout, ok.stdout + ok.stderr

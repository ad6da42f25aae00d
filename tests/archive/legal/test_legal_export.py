"""The case export carries the whole legal review, and the offline verifier checks it like the
records: each version's SHA-256, each opinion's binding and its place in the log, and that every
passage to a decision was on an approved version (or one that needed no review)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from archive.cases import services as cases
from archive.cases.models import Case, Stage
from archive.config import Settings
from archive.db import session_scope
from archive.export.services import build_export
from archive.i18n import use_language
from archive.legal import services as legal
from archive.legal.export import review_html
from archive.signing import Keyring
from archive.storage import MinioStore
from tests.archive.legal.legal_factories import approve, clock, submit, world


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    with zipfile.ZipFile(path) as zf:
        script = path.with_name("verify_export.py")
        script.write_bytes(zf.read("verify_export.py"))
    return subprocess.run(
        [sys.executable, "-I", str(script), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def forge(
    src: Path, dst: Path, keyring: Keyring, review: dict[str, Any], legal_index: dict[str, int]
) -> None:
    """Rewrite legal/review.json and re-sign the index with the archive's own key: an inconsistent
    export from a faulty or dishonest insider, which the signature alone would not catch."""
    data = json.dumps(review).encode()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        index = json.loads(zin.read("index.json"))
        index["files"]["legal/review.json"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        index["legal_review"] = legal_index
        sig = keyring.sign(index)
        for info in zin.infolist():
            if info.filename == "legal/review.json":
                zout.writestr(info.filename, data)
            elif info.filename == "index.json":
                zout.writestr("index.json", json.dumps(index))
            elif info.filename == "index.sig.json":
                zout.writestr(
                    "index.sig.json", json.dumps({"key_id": sig.key_id, "signature": sig.signature_b64})
                )
            else:
                zout.writestr(info, zin.read(info.filename))


def test_export_carries_the_review_and_the_verifier_checks_it(
    engine: Engine, settings: Settings, store: MinioStore, tmp_path: Path
) -> None:
    w = world(engine)
    v1 = submit(w)
    approve(w, v1.id)
    with session_scope(engine) as s:
        cases.update_case(s, w.user("clerk"), w.case_id, cases.CaseChange(stage=Stage.DECISION))
    v2 = submit(w, amends=1, facts="amended <b>facts</b>")
    with session_scope(engine) as s:
        legal.decide(
            s, w.user("lr1"), v2.id, legal.OpinionInput("return", "the <i>notice</i> is missing", True)
        )
        legal.escalate(s, w.user("rev1"), v2.id, "served orally", clock=clock())
        legal.record_collective(
            s, w.user("appr"), v2.id, "resubmit", "serve it in writing", ["局长"], clock=clock()
        )

    keyring = Keyring(settings.resolved_key_dir())
    out = tmp_path / "case.zip"
    build_export(engine, store, keyring, w.case_id, out, actor="user:clerk")
    ok = verify(out)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    label = f"case L-1 ({w.case_id})"
    for line in (
        f"{label}: legal review with 2 proposed decision versions and 2 opinions",
        f"{label}: proposed decision v1 hashes to its SHA-256",
        f"{label}: proposed decision v2 was submitted on the log",
        f"{label}: the voided approval of v1 is on the log",
        f"{label}: opinion 'approve' by lr1 binds v1 and is on the log",
        f"{label}: decision reached on proposed decision v1, approved by legal review",
    ):
        assert line in ok.stdout, (line, ok.stdout)
    with zipfile.ZipFile(out) as zf:
        review = json.loads(zf.read("legal/review.json"))
        page = zf.read("legal/review.html").decode()
        index = json.loads(zf.read("index.json"))
    assert index["legal_review"] == {"submissions": 2, "opinions": 2}
    assert [s["state"] for s in review["submissions"]] == ["voided", "returned"]
    assert review["escalations"][0]["outcome"] == "resubmit" and len(review["answers"]) == 10
    assert "&lt;b&gt;facts&lt;/b&gt;" in page and "<b>facts" not in page and "Lawful enforcing body" in page
    # In the exporting user's language, times in the agency's zone with the zone named.
    assert "CST (UTC+08:00)" in page and "Return for more material" in page
    with use_language("zh-CN"), Session(engine) as s:
        zh = review_html(s.get(Case, w.case_id), review).decode()
    assert (
        "<html lang='zh-CN'>" in zh and "执法主体是否合法" in zh and "北京时间" in zh and "退回补充材料" in zh
    )

    # Dropped from the export: the signed index still names it.
    dropped = tmp_path / "dropped.zip"
    with zipfile.ZipFile(out) as zin, zipfile.ZipFile(dropped, "w") as zout:
        for info in zin.infolist():
            if info.filename != "legal/review.json":
                zout.writestr(info, zin.read(info.filename))
    r = verify(dropped)
    assert r.returncode == 1 and "FAIL  legal/review.json is listed in the index but missing" in r.stdout

    # The facts of the approved version rewritten, index re-signed: the version no longer hashes.
    altered = json.loads(json.dumps(review))
    altered["submissions"][0]["facts"] = altered["submissions"][0]["digest_document"]["facts"] = (
        "nothing happened"
    )
    forged = tmp_path / "forged.zip"
    forge(out, forged, keyring, altered, index["legal_review"])
    r = verify(forged)
    assert r.returncode == 1 and f"FAIL  {label}: proposed decision v1 does not hash to" in r.stdout

    # The approval removed: the logged decision now stands without one.
    stripped = json.loads(json.dumps(review))
    stripped["opinions"] = [o for o in stripped["opinions"] if o["outcome"] != "approve"]
    forged = tmp_path / "no-approval.zip"
    forge(out, forged, keyring, stripped, {"submissions": 2, "opinions": 1})
    r = verify(forged)
    assert r.returncode == 1
    assert f"FAIL  {label}: decision reached WITHOUT an approval of the version decided (v1)" in r.stdout


def test_a_case_without_review_exports_as_before(
    engine: Engine, settings: Settings, store: MinioStore, tmp_path: Path
) -> None:
    w = world(engine)
    out = tmp_path / "plain.zip"
    build_export(engine, store, Keyring(settings.resolved_key_dir()), w.case_id, out, actor="user:clerk")
    r = verify(out)
    assert r.returncode == 0 and "no legal review in this export" in r.stdout
    with zipfile.ZipFile(out) as zf:
        assert "legal/review.json" not in zf.namelist()

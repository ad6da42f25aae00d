"""Auditor verification against the real services, tampering on purpose: every change an insider
or a broken disk could make is detected and named, and a clean archive verifies."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.audit import services as audit
from archive.audit.models import Problem, Report
from archive.config import Settings
from archive.db import session_scope
from archive.ingest import pipeline
from archive.ledger import merkle
from archive.ledger import services as ledger
from archive.media.models import Derivative, Manifest, Media
from archive.models import Event
from archive.signing import Keyring, canonical_json
from archive.storage import MinioStore
from tests.archive.ingest.test_pipeline import drive, receive
from tests.conftest import ROOT, LiveAPI
from tests.media_samples import make_samples


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_samples(tmp_path_factory.mktemp("media"), seconds=2, size="320x180")


@pytest.fixture
def ctx(engine: Engine, store: MinioStore, settings: Settings) -> pipeline.Context:
    return pipeline.Context(
        engine=engine, store=store, keyring=Keyring(settings.resolved_key_dir()), settings=settings
    )


@pytest.fixture
def archived(ctx: pipeline.Context, samples: dict[str, Path]) -> list[Media]:
    """Two items ingested to ready (video and photo) and a signed checkpoint over their history."""
    items = []
    for name in ("h264", "photo"):
        m = receive(ctx, samples[name])
        drive(ctx, m)
        with Session(ctx.engine) as s:
            got = s.get(Media, m.id)
            assert got is not None and got.state == "ready", got
            items.append(got)
    with session_scope(ctx.engine) as s:
        ledger.sign_checkpoint(s, ctx.keyring)
    return items


def run_verify(ctx: pipeline.Context) -> Report:
    return audit.verify_all(ctx.engine, ctx.store, ctx.keyring)


def found(report: Report, problem: Problem, subject: str = "") -> list[str]:
    return [str(d) for d in report.discrepancies if d.problem is problem and subject in d.subject]


def dba(engine: Engine, *sql: str) -> None:
    """Statements as the database owner runs them by hand, bypassing the application."""
    with engine.begin() as conn:
        for stmt in sql:
            conn.execute(text(stmt))


def test_clean_archive_verifies(ctx: pipeline.Context, archived: list[Media]) -> None:
    report = run_verify(ctx)
    assert report.ok, report.discrepancies
    assert report.media_checked == 2 and report.signatures_checked == 2
    assert report.objects_hashed >= 4  # two originals, proxies, a poster
    assert report.log_entries_checked > 8 and report.checkpoints_checked == 1


def test_flipped_byte_in_s3_is_named(
    ctx: pipeline.Context, archived: list[Media], env: dict[str, str]
) -> None:
    victim = archived[0]
    data = bytearray(ctx.store.read_bytes(ctx.store.originals, victim.object_key))
    data[len(data) // 2] ^= 0x01
    ctx.store.put_bytes(ctx.store.originals, victim.object_key, bytes(data), "video/mp4")
    report = run_verify(ctx)
    hits = found(report, Problem.BYTES_CHANGED, f"media {victim.id} original")
    assert len(hits) == 1 and victim.archived_sha256 in hits[0], report.discrepancies
    assert len(report.discrepancies) == 1  # nothing else is blamed
    # The command line says the same and exits non-zero; --json for machines.
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "verify", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 1, out.stderr
    body = json.loads(out.stdout)
    assert body["ok"] is False
    assert [d["problem"] for d in body["discrepancies"]] == ["bytes changed"]
    assert body["discrepancies"][0]["subject"] == f"media {victim.id} original"


def test_missing_derivative_object_is_named(ctx: pipeline.Context, archived: list[Media]) -> None:
    with Session(ctx.engine) as s:
        d = s.exec(select(Derivative).where(Derivative.media_id == archived[1].id)).first()
        assert d is not None
    ctx.store.delete(ctx.store.derived, d.object_key)
    report = run_verify(ctx)
    assert found(report, Problem.OBJECT_MISSING, f"media {archived[1].id} {d.kind.value}")
    assert len(report.discrepancies) == 1


def test_media_row_edited_with_sql_is_named(ctx: pipeline.Context, archived: list[Media]) -> None:
    victim = archived[0]
    dba(ctx.engine, f"UPDATE media SET file_name = 'innocent.mp4', size = size + 1 WHERE id = '{victim.id}'")  # noqa: S608
    report = run_verify(ctx)
    hits = found(report, Problem.ROW_CHANGED, f"media {victim.id}")
    assert any("original.file_name" in h and "innocent.mp4" in h for h in hits), hits
    assert any("original.size" in h for h in hits), hits


def test_replaced_manifest_is_named(ctx: pipeline.Context, archived: list[Media], tmp_path: Path) -> None:
    a, b = archived
    with Session(ctx.engine) as s:
        ma = s.exec(select(Manifest).where(Manifest.media_id == a.id)).one()
        mb = s.exec(select(Manifest).where(Manifest.media_id == b.id)).one()
    # (1) edited body under the old signature; (2) a forged manifest signed with a key that is not ours.
    edited = {**ma.body, "officer": "9999"}
    forged = {**mb.body, "original": {**mb.body["original"], "sha256": "0" * 64}}
    rogue = Keyring(tmp_path / "rogue-keys")
    sig = rogue.sign(forged)
    with ctx.engine.begin() as conn:
        conn.execute(
            text("UPDATE manifests SET body = :b WHERE id = :i"), {"b": json.dumps(edited), "i": ma.id}
        )
        conn.execute(
            text("UPDATE manifests SET body = :b, key_id = :k, signature = :s WHERE id = :i"),
            {"b": json.dumps(forged), "k": sig.key_id, "s": sig.signature_b64, "i": mb.id},
        )
    report = run_verify(ctx)
    assert found(report, Problem.MANIFEST_SIGNATURE_INVALID, f"media {a.id}")
    assert found(report, Problem.MANIFEST_REPLACED, f"media {a.id}")  # differs from the logged digest
    rogue_hits = found(report, Problem.MANIFEST_SIGNATURE_INVALID, f"media {b.id}")
    assert rogue_hits and sig.key_id in rogue_hits[0]
    assert found(report, Problem.MANIFEST_REPLACED, f"media {b.id}")


def test_deleting_a_log_row_is_refused_and_a_dba_delete_is_named(
    ctx: pipeline.Context, archived: list[Media]
) -> None:
    with Session(ctx.engine) as s:
        ev = s.exec(select(Event).where(Event.action == "media.verify")).first()
        assert ev is not None
    with pytest.raises(Exception, match="append-only"):
        dba(ctx.engine, f"DELETE FROM events WHERE id = {ev.id}")  # noqa: S608
    # A DBA can drop the trigger; the signed checkpoint still remembers the entry.
    dba(ctx.engine, "DROP TRIGGER events_append_only ON events", f"DELETE FROM events WHERE id = {ev.id}")  # noqa: S608
    report = run_verify(ctx)
    hits = found(report, Problem.LOG_ENTRY_REMOVED, f"event {ev.id}")
    assert hits, report.discrepancies
    assert found(report, Problem.LOG_ENTRY_CHANGED, "checkpoint") == []  # leaf hash kept: root still matches


def test_rewritten_entry_with_its_leaf_is_caught_by_the_checkpoint(
    ctx: pipeline.Context, archived: list[Media]
) -> None:
    """The thorough insider edits an event and recomputes its leaf hash: only the signed root knows."""
    with Session(ctx.engine) as s:
        ev = s.exec(select(Event).where(Event.action == "media.sign")).first()
        assert ev is not None
    dba(
        ctx.engine,
        "DROP TRIGGER events_append_only ON events",
        "DROP TRIGGER log_leaves_append_only ON log_leaves",
        f"UPDATE events SET actor = 'user:someone-else' WHERE id = {ev.id}",  # noqa: S608
    )
    with Session(ctx.engine) as s:
        changed = s.get(Event, ev.id)
        assert changed is not None
        new_hash = ledger.event_leaf_hash(changed).hex()
    dba(ctx.engine, f"UPDATE log_leaves SET leaf_hash = '{new_hash}' WHERE event_id = {ev.id}")  # noqa: S608
    report = run_verify(ctx)
    assert found(report, Problem.LOG_ENTRY_CHANGED, "checkpoint"), report.discrepancies
    # Removing the newest entries entirely: the checkpoint signed a longer log.
    dba(
        ctx.engine,
        "DROP TRIGGER log_checkpoints_append_only ON log_checkpoints",
        "DELETE FROM log_leaves WHERE idx = (SELECT max(idx) FROM log_leaves)",
    )
    report = run_verify(ctx)
    assert any("only" in h for h in found(report, Problem.LOG_ENTRY_REMOVED, "checkpoint"))


def test_fixity_sweep_checks_a_slice_at_a_bounded_rate_and_records_it(
    ctx: pipeline.Context, archived: list[Media]
) -> None:
    slept: list[float] = []
    report = audit.fixity_sweep(
        ctx.engine,
        ctx.store,
        ctx.keyring,
        interval_s=3600,
        cycle_s=7200,  # half the archive per run
        rate_bytes_per_s=10_000,
        sleep=slept.append,
    )
    assert report.ok and report.media_checked == 1
    assert sum(slept) > 0  # the rate bound made it wait
    second = audit.fixity_sweep(
        ctx.engine, ctx.store, ctx.keyring, interval_s=3600, cycle_s=7200, rate_bytes_per_s=None
    )
    assert second.media_checked == 1
    with Session(ctx.engine) as s:
        checked = [e.subject_id for e in s.exec(select(Event).where(Event.action == "media.fixity"))]
        summaries = list(s.exec(select(Event).where(Event.action == "audit.fixity")))
    assert sorted(checked) == sorted(m.id for m in archived)  # the second run took the other item
    assert len(summaries) == 2 and all(e.outcome == "ok" for e in summaries)
    assert audit.fixity_slice_size(1000, 3600, 7 * 86400) == 6


def test_auditor_api_proofs_check_out_offline(
    live_api: LiveAPI, make_user: Any, engine: Engine, settings: Settings
) -> None:
    auditor = make_user("aud1", "auditor")
    officer = make_user("0815", "officer")
    h = {"Authorization": f"Bearer {auditor}"}
    url = f"{live_api.url}/api/v1/audit"
    assert httpx.get(f"{url}/checkpoints", headers={"Authorization": f"Bearer {officer}"}).status_code == 403
    first = httpx.post(f"{url}/checkpoints", headers=h)
    assert first.status_code == 201, first.text
    httpx.get(f"{live_api.url}/api/v1/me", headers={"Authorization": f"Bearer {officer}"})
    cp = httpx.post(f"{url}/checkpoints", headers=h).json()
    keys = {k["key_id"]: k for k in httpx.get(f"{live_api.url}/api/v1/keys").json()["keys"]}
    pub = load_pem_public_key(keys[cp["key_id"]]["public_key_pem"].encode())
    assert isinstance(pub, Ed25519PublicKey)
    pub.verify(base64.b64decode(cp["signature"]), canonical_json(cp["body"]))
    with Session(engine) as s:
        denied = s.exec(select(Event).where(Event.action == "access.denied")).first()
        assert denied is not None and denied.outcome == "denied"
    got = httpx.get(f"{url}/events/{denied.id}/proof", headers=h).json()
    proof, root = got["proof"], bytes.fromhex(got["checkpoint"]["root_hash"])
    leaf = merkle.leaf_hash(canonical_json(proof["leaf"]))
    assert proof["leaf"]["outcome"] == "denied" and proof["client_addr"] == "127.0.0.1"
    # An auditor reads addresses: the leaf commits to it, the proof opens the commitment.
    assert proof["leaf"]["client_addr_commit"] == ledger.address_commitment(
        proof["client_addr_key"], "127.0.0.1"
    )
    merkle.verify_inclusion(
        proof["leaf_index"],
        proof["tree_size"],
        leaf,
        [bytes.fromhex(p) for p in proof["inclusion_path"]],
        root,
    )
    c = httpx.get(
        f"{url}/consistency",
        headers=h,
        params={"first": first.json()["tree_size"], "second": cp["tree_size"]},
    ).json()
    merkle.verify_consistency(
        c["first"],
        c["second"],
        bytes.fromhex(first.json()["root_hash"]),
        root,
        [bytes.fromhex(p) for p in c["consistency_path"]],
    )
    v = httpx.post(f"{url}/verify", headers=h, timeout=120).json()
    assert v["ok"] is True and v["checkpoints_checked"] == 2
    results = httpx.get(f"{url}/verify", headers=h).json()["results"]
    assert results[0]["action"] == "audit.verify" and results[0]["actor"] == "user:aud1"

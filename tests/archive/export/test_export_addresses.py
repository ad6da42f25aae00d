"""Issue 10, finding 6 (last item): a case export discloses no client address but the exporter's own.

A log with version 1 events (written before migration 0014_ledger_addr, holding the address) and
then version 2 events (holding a commitment to it): an export made by one user contains the other
users' addresses nowhere (every byte of every file searched), still verifies with the verifier it
ships, opens and checks the exporter's own addresses, and fails when a commitment, an address or a
withheld entry is forged. The archive's own audit (and ``custody verify``) checks the mixed log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive import events
from archive.accounts import services as accounts
from archive.accounts.models import Role, User
from archive.audit import services as audit
from archive.audit.models import Problem, Report
from archive.cases import services as cases
from archive.cases.models import CaseKind, DocumentKind, Stage
from archive.config import Settings
from archive.db import session_scope
from archive.errors import Forbidden
from archive.export.services import build_export
from archive.ledger import services as ledger
from archive.models import Event
from archive.signing import Keyring
from archive.storage import MinioStore
from tests.conftest import ROOT

CLERK_ADDR = "203.0.113.5"  # the exporting records manager's workstation
CLERK_OLD_ADDR = "203.0.113.9"  # the same clerk, before the upgrade
BOB_OLD_ADDR = "198.51.100.11"  # reviewer bob, a version 1 event
BOB_ADDR = "198.51.100.22"  # reviewer bob, version 2 events
ROOT_ADDR = "192.0.2.77"  # the admin
OTHERS = (BOB_OLD_ADDR, BOB_ADDR, ROOT_ADDR)


def v1_event(engine: Engine, actor: str, action: str, subject: tuple[str, str], addr: str) -> int:
    """An event as written before migration 0014_ledger_addr: no key, a version 1 leaf."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                text(
                    "INSERT INTO events (at, actor, action, subject_type, subject_id, client_addr, outcome, "
                    "details) VALUES (:at, :actor, :action, :st, :sid, :addr, 'ok', CAST(:d AS JSON)) "
                    "RETURNING id"
                ),
                {
                    "at": datetime(2026, 1, 5, 8, 0, tzinfo=UTC),
                    "actor": actor,
                    "action": action,
                    "st": subject[0],
                    "sid": subject[1],
                    "addr": addr,
                    "d": json.dumps({"note": "before the upgrade"}),
                },
            ).scalar_one()
        )


@dataclass
class World:
    engine: Engine
    store: MinioStore
    keyring: Keyring
    case_id: str
    v1_ids: dict[str, int]


@pytest.fixture
def world(engine: Engine, store: MinioStore, settings: Settings) -> World:
    keyring = Keyring(settings.resolved_key_dir())
    with session_scope(engine) as s:
        clerk, _ = accounts.add_user(s, "clerk", Role.RECORDS_MANAGER)
        accounts.add_user(s, "bob", Role.REVIEWER)
        accounts.add_user(s, "root", Role.ADMIN)
        case = cases.create_case(
            s,
            clerk,
            cases.CaseInput("ADDR-1", "Traffic stop", CaseKind.CRIMINAL, reviewers=["bob"]),
            addr=CLERK_ADDR,
        )
        case_id = case.id
    subject = ("case", case_id)
    v1_ids = {
        "bob": v1_event(engine, "user:bob", "case.view", subject, BOB_OLD_ADDR),
        "clerk": v1_event(engine, "user:clerk", "case.view", subject, CLERK_OLD_ADDR),
        "system": v1_event(engine, "system:worker", "case.touch", subject, ""),
    }
    with session_scope(engine) as s:  # the log as it stood at the upgrade, signed
        ledger.sign_checkpoint(s, keyring)
    when = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
    data = cases.RecordInput(
        Stage.INVESTIGATION, DocumentKind.REPORT, "0815", when, when + timedelta(minutes=5), "draft"
    )
    with session_scope(engine) as s:
        bob = s.exec(select(User).where(User.name == "bob")).one()
        cases.add_record(s, bob, case_id, data, addr=BOB_ADDR)
        events.record(
            s,
            actor="user:root",
            action="case.view",
            subject_type="case",
            subject_id=case_id,
            client_addr=ROOT_ADDR,
        )
        clerk = s.exec(select(User).where(User.name == "clerk")).one()
        cases.add_record(s, clerk, case_id, data, addr=CLERK_ADDR)
    return World(engine, store, keyring, case_id, v1_ids)


def export(w: World, path: Path, who: str, **kw: Any) -> Path:
    with Session(w.engine) as s:
        user = s.exec(select(User).where(User.name == who)).one()
    build_export(w.engine, w.store, w.keyring, w.case_id, path, actor=f"user:{who}", user=user, **kw)
    return path


def all_bytes(path: Path) -> list[tuple[str, bytes]]:
    """The zip as stored, and every member as its reader gets it (deflated members inflated)."""
    with zipfile.ZipFile(path) as zf:
        return [("<zip>", path.read_bytes())] + [(n, zf.read(n)) for n in zf.namelist()]


def run_shipped_verifier(export_zip: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """The verify_export.py inside the export, in its own process, nothing of ours on the path."""
    script = workdir / "verify_export.py"
    if not script.exists():
        with zipfile.ZipFile(export_zip) as zf:
            script.write_bytes(zf.read("verify_export.py"))
    return subprocess.run(
        [sys.executable, "-I", str(script), str(export_zip)],
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=120,
    )


def log_entries(path: Path) -> list[dict[str, Any]]:
    with zipfile.ZipFile(path) as zf:
        return list(json.loads(zf.read("log/events.json")))


def rewrite_log(src: Path, dst: Path, entries: list[dict[str, Any]]) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "log/events.json":
                data = json.dumps(entries).encode()
            zout.writestr(info, data)
    return dst


def commit(key: str, addr: str) -> str:
    return hmac.new(bytes.fromhex(key), addr.encode(), hashlib.sha256).hexdigest()


def test_export_by_one_user_holds_no_other_users_address_and_verifies(world: World, tmp_path: Path) -> None:
    out = export(world, tmp_path / "clerk.zip", "clerk")
    for name, data in all_bytes(out):
        for addr in OTHERS:
            assert addr.encode() not in data, (name, addr)
    entries = log_entries(out)
    by_actor: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_actor.setdefault(e["leaf"]["actor"], []).append(e)
    # The clerk's own version 2 events: address and key, and they open the commitment.
    own = [e for e in by_actor["user:clerk"] if e["leaf"].get("v") == 2]
    assert len(own) >= 2
    for e in own:
        assert e["client_addr"] == CLERK_ADDR and "client_addr" not in e["leaf"]
        assert e["leaf"]["client_addr_commit"] == commit(e["client_addr_key"], CLERK_ADDR)
    # The clerk's own version 1 event keeps its address in the leaf, checkable as before.
    (old,) = [e for e in by_actor["user:clerk"] if "v" not in e["leaf"]]
    assert old["leaf"]["client_addr"] == CLERK_OLD_ADDR and "withheld" not in old
    # Bob's and root's version 2 events: the commitment only, neither address nor key.
    for e in [*by_actor["user:bob"], *by_actor["user:root"]]:
        if e["leaf"].get("v") == 2:
            assert "client_addr_key" not in e and "client_addr" not in e
            assert len(e["leaf"]["client_addr_commit"]) == 64
    # Bob's version 1 event: the address withheld, only its leaf hash proven.
    (withheld,) = [e for e in entries if e.get("withheld")]
    assert withheld["event_id"] == world.v1_ids["bob"] and "client_addr" not in withheld["leaf"]
    # A version 1 event with no address has nothing to withhold: shipped whole.
    (system,) = [e for e in entries if e["event_id"] == world.v1_ids["system"]]
    assert system["leaf"]["client_addr"] == "" and "withheld" not in system
    # Still only this case's events (finding 6).
    assert all(
        e["leaf"]["subject_id"] == world.case_id or e["leaf"]["subject_type"] == "record" for e in entries
    )

    v = run_shipped_verifier(out, tmp_path)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "RESULT: OK" in v.stdout
    assert f"event {world.v1_ids['bob']} (" in v.stdout and "address withheld" in v.stdout
    assert f"client address '{CLERK_ADDR}' matches its commitment" in v.stdout
    shown = sum(1 for e in entries if "client_addr_key" in e or "client_addr" in e["leaf"])
    committed = sum(1 for e in entries if e["leaf"].get("v") == 2 and "client_addr_key" not in e)
    assert shown >= len(own) + 2 and committed >= 2  # bob's record, root's view
    assert (
        f"client address shown and checked for {shown}, undisclosed (commitment only) for {committed}, "
        "withheld from a version 1 entry (hash proven, text not) for 1"
    ) in v.stdout


def test_forged_commitments_addresses_and_withheld_entries_fail(world: World, tmp_path: Path) -> None:
    out = export(world, tmp_path / "clerk.zip", "clerk")
    entries = log_entries(out)
    i_own = next(i for i, e in enumerate(entries) if e.get("client_addr_key"))
    i_bob = next(
        i for i, e in enumerate(entries) if e["leaf"]["actor"] == "user:bob" and e["leaf"].get("v") == 2
    )
    i_held = next(i for i, e in enumerate(entries) if e.get("withheld"))
    own_id, bob_id, held_id = (entries[i]["event_id"] for i in (i_own, i_bob, i_held))

    def forged(name: str, change: Any) -> str:
        doc = json.loads(json.dumps(entries))
        change(doc)
        r = run_shipped_verifier(rewrite_log(out, tmp_path / name, doc), tmp_path)
        assert r.returncode == 1 and "RESULT: FAILED" in r.stdout
        return r.stdout

    # The commitment in the leaf changed (to hide which address acted): the leaf is no longer in the log.
    got = forged("commit.zip", lambda d: d[i_own]["leaf"].update(client_addr_commit="00" * 32))
    assert f"FAIL  event {own_id} (" in got and "is NOT in the signed log" in got
    # Another address claimed for the exporter's own event: it does not open the commitment.
    got = forged("addr.zip", lambda d: d[i_own].update(client_addr="10.1.2.3"))
    assert f"FAIL  event {own_id}: client address '10.1.2.3' and key do NOT match" in got
    # The key swapped for one that would "open" to the forged address does not match either.
    got = forged("key.zip", lambda d: d[i_own].update(client_addr_key="11" * 32))
    assert f"FAIL  event {own_id}: client address '{CLERK_ADDR}' and key do NOT match" in got
    # A version 2 leaf passed off as withheld (to skip hashing its text): refused.
    got = forged("v2held.zip", lambda d: d[i_bob].update(withheld=["client_addr"]))
    assert f"FAIL  event {bob_id} (" in got
    # A withheld entry pointing at another leaf hash: not in the log.
    got = forged("held.zip", lambda d: d[i_held].update(leaf_hash="22" * 32))
    assert f"FAIL  event {held_id} (case.view) is NOT in the signed log" in got


def test_only_the_audit_permission_exports_every_address(world: World, tmp_path: Path) -> None:
    for who in ("clerk", "bob"):  # records manager, reviewer: may export, may not open others
        with pytest.raises(Forbidden):
            export(world, tmp_path / f"{who}-all.zip", who, with_addresses=True)
    out = export(world, tmp_path / "root-all.zip", "root", with_addresses=True)
    with zipfile.ZipFile(out) as zf:
        log_file = zf.read("log/events.json")
    for addr in (*OTHERS, CLERK_ADDR, CLERK_OLD_ADDR):
        assert addr.encode() in log_file
    entries = log_entries(out)
    assert not [e for e in entries if e.get("withheld")]
    v = run_shipped_verifier(out, tmp_path)
    assert v.returncode == 0, v.stdout
    assert f"client address shown and checked for {len(entries)}, undisclosed" in v.stdout
    # The reviewer's own export: bob's addresses open, the clerk's and root's not.
    mine = export(world, tmp_path / "bob.zip", "bob")
    for name, data in all_bytes(mine):
        for addr in (CLERK_ADDR, CLERK_OLD_ADDR, ROOT_ADDR):
            assert addr.encode() not in data, (name, addr)
    assert {e["client_addr"] for e in log_entries(mine) if "client_addr_key" in e} - {""} == {BOB_ADDR}
    assert any(e["leaf"].get("client_addr") == BOB_OLD_ADDR for e in log_entries(mine))
    assert run_shipped_verifier(mine, tmp_path).returncode == 0


def test_the_archive_audit_checks_the_mixed_log_and_every_commitment(
    world: World, env: dict[str, str]
) -> None:
    with session_scope(world.engine) as s:
        ledger.sign_checkpoint(s, world.keyring)
    with Session(world.engine) as s:
        rows = list(s.exec(select(Event).order_by(Event.id)))  # type: ignore[arg-type]
        report = Report(started_at=datetime.now(UTC))
        audit.verify_log(s, world.keyring, report)
    assert report.ok, report.discrepancies
    assert report.checkpoints_checked == 2 and report.log_entries_checked == len(rows)
    assert {r.id for r in rows if r.addr_key is None} == set(world.v1_ids.values())
    cli = subprocess.run(
        [sys.executable, "-m", "cli.main", "verify"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    # A DBA rewrites where bob acted from, in a version 2 row and in a version 1 row: both named.
    bob_v2 = next(r for r in rows if r.actor == "user:bob" and r.addr_key is not None)
    with world.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER events_append_only ON events"))
        conn.execute(
            text("UPDATE events SET client_addr = '10.0.0.1' WHERE id IN (:a, :b)"),
            {"a": bob_v2.id, "b": world.v1_ids["bob"]},
        )
    with Session(world.engine) as s:
        report = Report(started_at=datetime.now(UTC))
        audit.verify_log(s, world.keyring, report)
    changed = {d.subject for d in report.discrepancies if d.problem is Problem.LOG_ENTRY_CHANGED}
    assert {f"event {bob_v2.id}", f"event {world.v1_ids['bob']}"} <= changed

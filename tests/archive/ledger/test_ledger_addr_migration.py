"""Migration 0014_ledger_addr on PostgreSQL: a database whose custody log already holds version 1
events (sequenced and under a signed checkpoint, as the code before the upgrade wrote them) upgrades
without touching a row; those leaves hash exactly as before, new events get version 2 leaves, and
the whole mixed log verifies against both checkpoints."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from archive import events
from archive.audit import services as audit
from archive.audit.models import Report
from archive.config import Settings
from archive.db import make_engine, session_scope
from archive.ledger import merkle
from archive.ledger import services as ledger
from archive.models import Event
from archive.signing import Keyring, canonical_json
from migrations import alembic_config, migrate
from tests.conftest import _admin_conninfo

T0 = datetime(2025, 11, 3, 9, 30, tzinfo=UTC)
# (actor, action, client address, details) written before the upgrade
OLD: list[tuple[str, str, str, dict[str, Any]]] = [
    ("user:bob", "case.view", "198.51.100.11", {"case": "c-1", "note": "看过"}),
    ("system:worker", "media.verify", "", {"offset_s": 1 / 3, "to": "verified"}),
    ("user:clerk", "case.link", "203.0.113.9", {"case": "c-1"}),
]


@pytest.fixture
def bare_url(pg_template: str) -> Iterator[str]:
    """An empty database of its own (not a clone of the migrated template)."""
    name = f"custody_m_{uuid.uuid4().hex[:12]}"
    admin = _admin_conninfo(pg_template)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} OWNER custody")
    yield make_url(pg_template).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def v1_leaf(
    event_id: int, at: datetime, actor: str, action: str, addr: str, details: dict[str, Any]
) -> bytes:
    """The leaf the code before 0014_ledger_addr hashed, written out independently of it."""
    doc = {
        "id": event_id,
        "at": at.isoformat(),
        "actor": actor,
        "action": action,
        "subject_type": "case",
        "subject_id": "c-1",
        "client_addr": addr,
        "outcome": "ok",
        "details": details,
    }
    return canonical_json(doc)


def test_upgrade_keeps_version_1_leaves_and_adds_version_2(bare_url: str, tmp_path: Path) -> None:
    cfg = alembic_config(bare_url)
    for head in ScriptDirectory.from_config(cfg).get_heads():  # the schema just before the upgrade
        if head != "0014_ledger_addr":
            command.upgrade(cfg, head)
    engine = make_engine(bare_url)
    keyring = Keyring(tmp_path / "keys")
    hashes = []
    with engine.begin() as conn:
        for i, (actor, action, addr, details) in enumerate(OLD):
            at = T0 + timedelta(seconds=i)
            eid = conn.execute(
                text(
                    "INSERT INTO events (at, actor, action, subject_type, subject_id, client_addr, outcome, "
                    "details) VALUES (:at, :actor, :action, 'case', 'c-1', :addr, 'ok', CAST(:d AS JSON)) "
                    "RETURNING id"
                ),
                {"at": at, "actor": actor, "action": action, "addr": addr, "d": json.dumps(details)},
            ).scalar_one()
            h = merkle.leaf_hash(v1_leaf(eid, at, actor, action, addr, details))
            hashes.append(h)
            conn.execute(
                text(
                    "INSERT INTO log_leaves (idx, event_id, leaf_hash, sequenced_at) VALUES (:i, :e, :h, :t)"
                ),
                {"i": i, "e": eid, "h": h.hex(), "t": at},
            )
        root = merkle.root_of(hashes)
        body = ledger.checkpoint_body(len(OLD), root, T0.isoformat(), keyring.current_key_id())
        sig = keyring.sign(body)
        conn.execute(
            text(
                "INSERT INTO log_checkpoints (tree_size, root_hash, signed_at, key_id, signature, body) "
                "VALUES (:n, :r, :t, :k, :s, CAST(:b AS JSON))"
            ),
            {
                "n": len(OLD),
                "r": root.hex(),
                "t": T0,
                "k": sig.key_id,
                "s": sig.signature_b64,
                "b": json.dumps(body),
            },
        )

    migrate(Settings(database_url=bare_url))  # every head, 0014_ledger_addr among them

    with Session(engine) as s:
        old = list(s.exec(select(Event).order_by(Event.id)))  # type: ignore[arg-type]
        assert [e.addr_key for e in old] == [None] * len(OLD)  # no row rewritten
        for ev, h in zip(old, hashes, strict=True):
            assert ledger.event_leaf_hash(ev) == h  # hashes exactly as before the upgrade
            doc = ledger.leaf_document(ev)
            assert "v" not in doc and "client_addr_commit" not in doc
    with session_scope(engine) as s:
        for addr in ("198.51.100.22", ""):
            events.record(
                s,
                actor="user:bob",
                action="case.view",
                subject_type="case",
                subject_id="c-1",
                client_addr=addr,
            )
    with session_scope(engine) as s:
        cp = ledger.sign_checkpoint(s, keyring)
    assert cp.tree_size == len(OLD) + 2
    with Session(engine) as s:
        after = old[-1].id or 0
        new = [e for e in s.exec(select(Event).order_by(Event.id)) if (e.id or 0) > after]  # type: ignore[arg-type]
        for ev in new:
            doc = ledger.leaf_document(ev)
            assert doc["v"] == 2 and "client_addr" not in doc and ev.addr_key is not None
            assert len(bytes.fromhex(ev.addr_key)) == 32
            assert doc["client_addr_commit"] == ledger.address_commitment(ev.addr_key, ev.client_addr)
        assert new[0].addr_key != new[1].addr_key  # a key per event, not one per archive
        report = Report(started_at=datetime.now(UTC))
        audit.verify_log(s, keyring, report)
    assert report.ok, report.discrepancies
    assert (report.checkpoints_checked, report.log_entries_checked) == (2, len(OLD) + 2)
    # The proof for a version 1 entry still checks against the checkpoint signed before the upgrade.
    with Session(engine) as s:
        p = ledger.inclusion(s, old[0].id or 0, len(OLD))
    assert hashlib.sha256(b"\x00" + canonical_json(p.leaf)).hexdigest() == p.leaf_hash
    merkle.verify_inclusion(
        p.leaf_index, len(OLD), bytes.fromhex(p.leaf_hash), [bytes.fromhex(x) for x in p.path], root
    )
    engine.dispose()

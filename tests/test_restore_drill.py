"""The restore drill of docs/operations.md, for real: a PostgreSQL with WAL archiving, a base backup
(pg_basebackup), point-in-time recovery to a named restore point, and `custody verify` against the
restored database naming exactly the custody entries it lacks next to the checkpoint published to S3.

Its own PostgreSQL instance (the shared test server runs without WAL archiving and must not be
touched); S3 is the test profile's gateway, the signing keys a folder apart from both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlmodel import Session, col, select

from archive import events
from archive.accounts import services as accounts
from archive.accounts.models import Role
from archive.config import get_settings
from archive.db import make_engine, session_scope
from archive.ledger import publish
from archive.ledger import services as ledger
from archive.ledger.models import LogLeaf
from archive.signing import Keyring
from archive.storage import MinioStore
from migrations import migrate
from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.e2e


def _pg_bin() -> Path:
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not bins:
        pytest.skip("PostgreSQL server not installed")
    return bins[-1]


AS_PG = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class Postgres:
    """One PostgreSQL instance in its own folder, as the postgres user when we are root."""

    def __init__(self, bin_dir: Path, data: Path, port: int, archive: Path) -> None:
        self.bin, self.data, self.port, self.archive = bin_dir, data, port, archive

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.data.name}.log"

    def run(self, *cmd: str) -> None:
        subprocess.run([*AS_PG, *cmd], check=True, capture_output=True, timeout=120)

    def conf(self, extra: str = "") -> None:
        # WAL archiving exactly as deploy/ceph/postgresql-pitr.conf sets it (a local folder here)
        (self.data / "custody.conf").write_text(
            f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.data}'\n"
            "wal_level = replica\narchive_mode = on\n"
            f"archive_command = 'test ! -f {self.archive}/%f && cp %p {self.archive}/%f'\n"
            "fsync = off\n" + extra
        )
        shutil.chown(self.data / "custody.conf", "postgres", "postgres") if AS_PG else None

    def start(self) -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "start")

    def stop(self) -> None:
        subprocess.run(
            [*AS_PG, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )

    def sql(self, query: str) -> Any:
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as c:
            cur = c.execute(query)
            row = cur.fetchone() if cur.description else None
            return row[0] if row else None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://custody@127.0.0.1:{self.port}/custody"


@pytest.fixture
def drill_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="custody-drill-"))
    d.chmod(0o711)
    for sub in ("archive", "base", "restored"):
        (d / sub).mkdir(mode=0o700)
        if AS_PG:
            shutil.chown(d / sub, "postgres", "postgres")
    yield d
    if not os.environ.get("DRILL_KEEP"):
        shutil.rmtree(d, ignore_errors=True)


def _events(engine: Any, tag: str, n: int) -> list[int]:
    ids = []
    with session_scope(engine) as s:
        accounts.add_user(s, f"drill-{tag}", Role.OFFICER)
        for i in range(n):
            ev = events.record(
                s, actor="user:drill", action="media.receive", subject_type="media", subject_id=f"{tag}-{i}"
            )
            s.flush()
            assert ev.id is not None
            ids.append(ev.id)
    return ids


def _checkpoint_and_publish(engine: Any, keyring: Keyring, store: MinioStore) -> int:
    with session_scope(engine) as s:
        cp = ledger.sign_checkpoint(s, keyring)
    with Session(engine) as s:
        assert publish.publish(s, store) == cp.tree_size
    return cp.tree_size


def _verify(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "verify", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    return out.returncode, json.loads(out.stdout)


def test_point_in_time_restore_is_named_by_verify(
    services: dict[str, str], drill_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_bin = _pg_bin()
    archive = drill_dir / "archive"
    primary = Postgres(pg_bin, drill_dir / "base" / "primary", free_port(), archive)
    restored = Postgres(pg_bin, drill_dir / "restored" / "pg", primary.port, archive)
    primary.run(
        str(pg_bin / "initdb"), "-D", str(primary.data), "--auth=trust", "-U", "postgres", "-E", "UTF8"
    )
    with (primary.data / "postgresql.conf").open("a") as fh:
        fh.write("include = 'custody.conf'\n")
    primary.conf()
    primary.start()
    try:
        primary.sql("CREATE ROLE custody LOGIN")
        primary.sql("CREATE DATABASE custody OWNER custody")
        tag = uuid.uuid4().hex[:10]
        env = {
            **{k: v for k, v in services.items() if k.startswith("CUSTODY_S3")},
            "CUSTODY_DATABASE_URL": primary.url,
            "CUSTODY_REDIS_URL": services["CUSTODY_REDIS_URL"],
            "CUSTODY_DATA_DIR": str(tmp_path / "var"),  # the signing keys: kept apart from the database
            "CUSTODY_BUCKET_ORIGINALS": f"drill-{tag}-originals",
            "CUSTODY_BUCKET_DERIVED": f"drill-{tag}-derived",
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()
        settings = get_settings()
        migrate(settings)
        store = MinioStore(settings)
        store.ensure_buckets()
        keyring = Keyring(settings.resolved_key_dir())
        engine = make_engine(primary.url)

        _events(engine, "one", 3)
        _checkpoint_and_publish(engine, keyring, store)
        # The nightly base backup (streamed WAL included, so it is consistent on its own).
        primary.run(
            str(pg_bin / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", str(restored.data), "-X", "stream", "-c", "fast",
        )  # fmt: skip
        kept = _events(engine, "two", 4)  # after the base backup: only WAL replay brings these back
        size_at_restore_point = _checkpoint_and_publish(engine, keyring, store)
        primary.sql("SELECT pg_create_restore_point('drill')")
        lost = _events(engine, "three", 5)  # after the restore point: what the restore loses
        published = _checkpoint_and_publish(engine, keyring, store)
        with Session(engine) as s:
            lost_leaves = list(s.exec(select(LogLeaf).where(LogLeaf.idx >= size_at_restore_point)))
        rc, before = _verify(env)
        assert rc == 0 and before["ok"], before["discrepancies"]
        primary.sql("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 60
        while primary.sql("SELECT archived_count FROM pg_stat_archiver") < 3:
            assert time.monotonic() < deadline, "WAL not archived"
            time.sleep(0.2)
        engine.dispose()
    finally:
        primary.stop()

    # The drill: restore the base backup, replay archived WAL up to the restore point, promote.
    for stale in restored.data.glob(".s.PGSQL.*"):  # the primary's socket lock, copied with the backup
        stale.unlink()
    restored.conf(
        f"restore_command = 'cp {archive}/%f %p'\nrecovery_target_name = 'drill'\n"
        "recovery_target_action = 'promote'\n"
    )
    (restored.data / "recovery.signal").touch()
    if AS_PG:
        shutil.chown(restored.data / "recovery.signal", "postgres", "postgres")
    restored.start()
    try:
        deadline = time.monotonic() + 60
        while restored.sql("SELECT pg_is_in_recovery()"):
            assert time.monotonic() < deadline, "recovery did not finish"
            time.sleep(0.2)
        engine = make_engine(restored.url)
        with Session(engine) as s:
            have = set(s.exec(select(col(LogLeaf.event_id))))
        engine.dispose()
        assert set(kept) <= have  # replayed from the WAL archive, past the base backup
        assert not set(lost) & have

        rc, after = _verify(env)
        assert rc == 1 and not after["ok"]
        assert after["published_tree_size"] == published
        problems = [(d["problem"], d["subject"]) for d in after["discrepancies"]]
        assert ("log rolled back", f"log leaves {size_at_restore_point}..{published - 1}") in problems
        named = {s for p, s in problems if p == "published entry missing"}
        assert named == {f"event {leaf.event_id}" for leaf in lost_leaves}
        assert {f"event {i}" for i in lost} <= named
        # nothing else is wrong with the restored database: only what it lacks is reported
        assert {p for p, _ in problems} == {"log rolled back", "published entry missing"}
    finally:
        restored.stop()
        get_settings.cache_clear()

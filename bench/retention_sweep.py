"""Retention sweep over 1,000,000 media rows on PostgreSQL (synthetic, 1% expired) against a naive
one-row-at-a-time loop, in the same run.

Both sides decide the same thing: which items are due, re-checking each candidate's protection
from its facts with the current policy (flags, holds, review, case links). Both run as dry runs, so
the figure is the cost of finding and re-checking, which is what grows with the archive; the S3
deletes that follow are the same for both. The naive loop walks every media row and classifies it;
it is timed on a sample of rows and scaled to the whole table (said in the output).

    .venv/bin/python bench/retention_sweep.py [--rows 1000000] [--sample 20000]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import _admin_conninfo, log, service_env


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=20_000)
    args = ap.parse_args()
    env = service_env()
    os.environ.update(env)
    base_url = env["CUSTODY_TEST_DATABASE_URL"]
    name = f"custody_bench_ret_{uuid.uuid4().hex[:8]}"
    admin = _admin_conninfo(base_url)
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name} OWNER custody")
    url = base_url.rsplit("/", 1)[0] + "/" + name
    os.environ["CUSTODY_DATABASE_URL"] = url
    try:
        run(url, args.rows, args.sample)
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run(url: str, rows: int, sample: int) -> None:
    from sqlmodel import Session, select

    from archive.config import get_settings
    from archive.db import make_engine
    from archive.media.models import Media
    from archive.signing import Keyring
    from archive.storage import MinioStore
    from migrations import migrate
    from retention import services as rs

    settings = get_settings()
    migrate(settings)
    engine = make_engine(url)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as c:
        c.execute("INSERT INTO officers (badge, name, created_at) VALUES ('0815', '0815', now())")
        c.execute("INSERT INTO devices (serial, officer_badge, created_at) VALUES ('BC-4711', '0815', now())")
        media = io.StringIO()
        status = io.StringIO()
        for i in range(rows):
            mid = f"{i:08d}-0000-4000-8000-000000000000"
            expired = i % 100 == 0  # 1%
            recorded = now - timedelta(days=400 if expired else 30 + i % 100)
            sha = f"{i:064x}"
            media.write(
                f"{mid}\t{sha}\t{sha}\t1000\tvideo/mp4\tf{i}.mp4\t\t0815\tBC-4711\t{recorded.isoformat()}\t"
                f"{now.isoformat()}\t0\tassumed\tready\t\t\\N\toriginals/{mid}\t\\N\t\\N\t{now.isoformat()}\n"
            )
            until = recorded + timedelta(days=183)
            status.write(
                f"{mid}\t1\tdefault\tperiod\t{until.isoformat()}\tf\tf\t{{}}\t\\N\tf\t{now.isoformat()}\t\\N\n"
            )
        cols = (
            "id, sha256, archived_sha256, size, content_type, file_name, source_path, officer_badge, "
            "device_serial, recorded_at, received_at, clock_offset_s, clock_source, state, state_reason, "
            "duplicate_of, object_key, upload_id, probe, updated_at"
        )
        with c.cursor().copy(f"COPY media ({cols}) FROM STDIN") as cp:
            cp.write(media.getvalue())
        with c.cursor().copy(
            "COPY retention_status (media_id, policy_version, rule_id, keep, delete_after, protected, "
            "legal_hold, explanation, storage_retain_until, storage_legal_hold, computed_at, deleted_at) "
            "FROM STDIN"
        ) as cp:
            cp.write(status.getvalue())
        c.execute("ANALYZE")
    log(f"{rows:,} media rows and their retention status loaded in {time.perf_counter() - t0:.1f} s")

    store = MinioStore(settings)
    keyring = Keyring(Path(settings.resolved_key_dir()))
    t0 = time.perf_counter()
    result = rs.sweep(engine, store, keyring, dry_run=True, batch=500)
    ours = time.perf_counter() - t0
    due = len(result.deleted)

    # Naive: every row, one at a time: read it, gather its facts, classify.
    t0 = time.perf_counter()
    naive_due = 0
    with Session(engine) as s:
        policy = rs.current_policy(s)
        ids = s.exec(select(Media.id).order_by(Media.id).limit(sample)).all()
        for mid in ids:
            m = s.get(Media, mid)
            assert m is not None
            d = rs.classify(rs.gather_facts(s, m), policy)
            if d.delete_after is not None and d.delete_after <= now:
                naive_due += 1
            s.expunge_all()
    naive_sample = time.perf_counter() - t0
    naive = naive_sample * rows / len(ids)

    print(f"\nretention sweep (dry run), PostgreSQL, {rows:,} media rows, 1% expired")
    print(f"  ours   batched due-index scan + re-check of each candidate: {ours:8.2f} s  ({due:,} due)")
    print(
        f"  naive  one row at a time: {naive_sample:.2f} s for {len(ids):,} rows "
        f"({naive_due:,} due in the sample) -> {naive:8.1f} s for {rows:,} rows (scaled linearly)"
    )
    print(f"  ratio naive/ours: {naive / ours:8.1f}x   (goal >= 20x)")


if __name__ == "__main__":
    main()

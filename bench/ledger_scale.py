"""Custody log at scale: append rate, sequencing rate, proof sizes and times at 10^6 entries.

- append: ``events.record`` one event per transaction (as a request does), on PostgreSQL;
- sequence: ``ledger.sequence_all`` over N synthetic events (bulk-inserted with generate_series):
  canonical JSON, leaf hash, leaf rows and stored subtrees, batches of 5000 under the advisory lock;
- root, inclusion and consistency proofs at N from stored subtrees (rows read, bytes, ms);
- the auditor's full log recomputation (``audit.verify_log``): time and peak Python memory.

    .venv/bin/python bench/ledger_scale.py [--entries 1000000]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

from common import Stack, log, machine, write_result
from sqlalchemy import text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--appends", type=int, default=2000)
    args = ap.parse_args()
    from sqlmodel import Session

    from archive import events
    from archive.audit import services as audit
    from archive.audit.models import Report
    from archive.config import get_settings
    from archive.db import session_scope
    from archive.ledger import merkle
    from archive.ledger import services as ledger
    from archive.signing import Keyring

    result: dict[str, object] = {"machine": machine(), "entries": args.entries}
    with Stack(with_workers=False, with_api=False) as stack:
        engine = stack.engine()
        ring = Keyring(get_settings().resolved_key_dir())
        t = time.perf_counter()
        for i in range(args.appends):
            with session_scope(engine) as s:
                events.record(
                    s,
                    actor="user:bench",
                    action="media.view",
                    subject_type="media",
                    subject_id=f"m{i}",
                    client_addr="10.0.0.1",
                    details={"i": i},
                )
        dt = time.perf_counter() - t
        result["append_events_per_s_one_per_txn"] = round(args.appends / dt)
        log(f"append: {args.appends / dt:.0f} events/s (one per transaction)")
        n = args.entries - args.appends
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO events (at, actor, action, subject_type, subject_id, client_addr, outcome, "
                    "details) "
                    "SELECT now(), 'user:bench', 'media.stream', 'media', 'm' || g, '10.0.0.2', 'ok', "
                    "json_build_object('range', json_build_array(0, g), 'what', 'proxy') "
                    "FROM generate_series(1, :n) g"
                ),
                {"n": n},
            )
        t = time.perf_counter()
        with session_scope(engine) as s:
            total = ledger.sequence_all(s)
        dt = time.perf_counter() - t
        result["sequence_events_per_s"] = round(total / dt)
        log(f"sequenced {total} in {dt:.1f} s ({total / dt:.0f}/s)")
        with session_scope(engine) as s:
            t = time.perf_counter()
            cp = ledger.sign_checkpoint(s, ring)
            result["checkpoint_ms_at_n"] = round((time.perf_counter() - t) * 1000, 1)
        size = cp.tree_size
        with Session(engine) as s:
            t = time.perf_counter()
            leaf = s.exec(
                text("SELECT event_id FROM log_leaves WHERE idx = :i").bindparams(i=size // 3)
            ).one()[0]  # type: ignore[call-overload]
            p = ledger.inclusion(s, leaf, size)
            result["inclusion_ms"] = round((time.perf_counter() - t) * 1000, 1)
            result["inclusion_path_hashes"] = len(p.path)
            result["inclusion_proof_bytes"] = 32 * len(p.path)
            merkle.verify_inclusion(
                p.leaf_index,
                size,
                bytes.fromhex(p.leaf_hash),
                [bytes.fromhex(h) for h in p.path],
                bytes.fromhex(cp.root_hash),
            )
            t = time.perf_counter()
            c = ledger.consistency(s, size * 2 // 3 + 7, size)
            result["consistency_ms"] = round((time.perf_counter() - t) * 1000, 1)
            result["consistency_path_hashes"] = len(c)
            result["consistency_proof_bytes"] = 32 * len(c)
            t = time.perf_counter()
            tracemalloc.start()
            rep = Report(started_at=ledger.utcnow())
            audit.verify_log(s, ring, rep)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            dt = time.perf_counter() - t
            assert rep.ok, rep.discrepancies[:3]
            result["verify_log_s"] = round(dt, 1)
            result["verify_log_entries_per_s"] = round(size / dt)
            result["verify_log_peak_python_mib"] = round(peak / 2**20, 1)
        with engine.connect() as conn:
            result["stored_subtree_rows"] = conn.execute(text("SELECT count(*) FROM log_nodes")).scalar_one()
            result["log_tables_mib"] = round(
                conn.execute(
                    text("SELECT pg_total_relation_size('log_leaves') + pg_total_relation_size('log_nodes')")
                ).scalar_one()
                / 2**20,
                1,
            )
        engine.dispose()
    for k, v in result.items():
        print(f"{k:36} {v}")
    write_result("ledger_scale", result)


if __name__ == "__main__":
    main()

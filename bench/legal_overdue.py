"""Legal review: the overdue list over 100,000 cases with reviews, on PostgreSQL.

Seeds the Stack's own database with N cases (default 100,000), each with a proposed decision submitted
for legal review: about 80 % already decided (approved, returned, disapproved, or superseded by a later
version, which adds a second row), 20 % pending, with deadlines spread from six months ago to a month
ahead so that part of the pending ones are overdue. Rows are written in bulk (SQLAlchemy Core
executemany), as a migration of an existing archive would load them, then VACUUM ANALYZE (the
steady state autovacuum keeps).

Then ``GET /api/v1/legal-reviews?overdue=true`` (first page of 100, with the total) over HTTP from the
API process, as a legal reviewer: 3 warm-ups, then 30 timed calls; median and p95 wall time as the
client sees it. Also the service call in-process (no HTTP) and the query plan's use of the partial
index ``ix_legal_submissions_pending_due``. Goal: median < 100 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from common import Stack, log, machine, write_result


def seed(stack: Stack, n: int) -> tuple[str, int]:
    from sqlalchemy import insert, text

    from archive.accounts import services as accounts
    from archive.accounts.models import Role
    from archive.cases.models import Case, CaseKind, Stage
    from archive.db import session_scope
    from archive.legal.models import LegalSubmission, SubmissionState
    from archive.models import new_id

    engine = stack.engine()
    with session_scope(engine) as s:
        _, token = accounts.add_user(s, "lr-bench", Role.LEGAL_REVIEWER)
    rnd = random.Random(12)
    today = date.today()
    now = datetime.now(UTC)
    states = [SubmissionState.APPROVED, SubmissionState.RETURNED, SubmissionState.DISAPPROVED]
    rows = 0
    batch = 5000
    t0 = time.monotonic()
    for start in range(0, n, batch):
        cases: list[dict[str, Any]] = []
        subs: list[dict[str, Any]] = []
        for i in range(start, min(n, start + batch)):
            cid = new_id()
            cases.append(
                {
                    "id": cid,
                    "agency": "default",
                    "number": f"B-{i:07d}",
                    "title": f"bench case {i}",
                    "kind": CaseKind.ADMINISTRATIVE,
                    "status": "open",
                    "stage": Stage.REVIEW,
                    "created_by": "bench",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            due = today + timedelta(days=rnd.randint(-180, 30))
            pending = rnd.random() < 0.2
            versions = 2 if rnd.random() < 0.1 else 1
            for v in range(1, versions + 1):
                last = v == versions
                state = (
                    (SubmissionState.PENDING if pending else rnd.choice(states))
                    if last
                    else SubmissionState.SUPERSEDED
                )
                subs.append(
                    {
                        "id": new_id(),
                        "case_id": cid,
                        "version": v,
                        "decision_kind": "fine",
                        "amounts": {"fine": str(rnd.randint(50, 50000))},
                        "legal_basis": ["art. 58"],
                        "facts": "bench",
                        "evidence": [],
                        "materials": {},
                        "hearing": False,
                        "marks": [],
                        "digest": f"{i:064x}",
                        "required": True,
                        "rule_id": "administrative-penalty",
                        "matched_rules": ["administrative-penalty"],
                        "higher_authority": False,
                        "catalogue_version": 1,
                        "state": state,
                        "lock_version": 1,
                        "submitted_by": "bench",
                        "submitted_at": now - timedelta(days=10),
                        "attestation": "bench",
                        "due": due,
                        "calendar": "default v1",
                        "supersedes": v - 1 or None,
                    }
                )
        with engine.begin() as conn:
            conn.execute(insert(Case), cases)
            conn.execute(insert(LegalSubmission), subs)
        rows += len(subs)
    # As autovacuum leaves a table in steady state: statistics and the visibility map (index-only scans).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE cases"))
        conn.execute(text("VACUUM ANALYZE legal_submissions"))
    log(f"seeded {n} cases, {rows} submissions in {time.monotonic() - t0:.1f} s")
    return token, rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--calls", type=int, default=30)
    args = ap.parse_args()
    import httpx
    from sqlalchemy import text
    from sqlmodel import Session, select

    from archive.accounts.models import User
    from archive.legal import services as legal

    log(machine())
    with Stack(with_workers=False) as stack:
        token, rows = seed(stack, args.cases)
        url = f"{stack.url}/api/v1/legal-reviews"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(timeout=60) as client:
            for _ in range(3):
                r = client.get(url, params={"overdue": "true"}, headers=headers)
                r.raise_for_status()
            total = r.json()["total"]
            times = []
            for _ in range(args.calls):
                t = time.perf_counter()
                r = client.get(url, params={"overdue": "true"}, headers=headers)
                times.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
        engine = stack.engine()
        with Session(engine) as s:
            user = s.exec(select(User).where(User.name == "lr-bench")).one()
            inproc = []
            for _ in range(args.calls):
                t = time.perf_counter()
                legal.overdue(s, user)
                inproc.append((time.perf_counter() - t) * 1000)
            plan = "\n".join(
                row[0]
                for row in s.execute(
                    text(
                        "EXPLAIN SELECT * FROM legal_submissions "
                        "WHERE state = 'pending' AND due < CURRENT_DATE ORDER BY due, id LIMIT 100"
                    )
                )
            )
        med, p95 = statistics.median(times), sorted(times)[int(0.95 * (len(times) - 1))]
        result = {
            "cases": args.cases,
            "submissions": rows,
            "overdue_total": total,
            "http_median_ms": round(med, 1),
            "http_p95_ms": round(p95, 1),
            "service_median_ms": round(statistics.median(inproc), 1),
            "uses_partial_index": "ix_legal_submissions_pending_due" in plan,
            "goal": "median < 100 ms",
        }
        write_result("legal_overdue", result)
        print(f"legal overdue list: {args.cases} cases, {rows} submissions, {total} overdue")
        print(
            "  GET /api/v1/legal-reviews?overdue=true (first 100 + total): "
            f"median {med:.1f} ms, p95 {p95:.1f} ms"
        )
        print(f"  service call in-process: median {result['service_median_ms']} ms")
        print(f"  plan uses ix_legal_submissions_pending_due: {result['uses_partial_index']}")
        print(f"  goal median < 100 ms: {'met' if med < 100 else 'NOT met'}")


if __name__ == "__main__":
    main()

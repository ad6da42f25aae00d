"""Whole-process recording: coverage of a big case, and the early-warning check over a big archive.

1. Coverage: a case with 200 linked recordings and 1,000 text records (each with an activity of the
   recording-item list) on PostgreSQL; ``GET /api/v1/cases/{id}/coverage`` over HTTP from the API
   process (uvicorn): 3 warm-ups, then N timed calls; median and p95 as the client sees them. Also
   the service function alone (in-process, no HTTP). Goal: median < 300 ms.
2. Warnings: 10^6 text records (with activities) and 10^6 recordings (linked, 10 per case in 100,000
   cases, plus unlinked ones), generated in PostgreSQL with generate_series and ANALYZEd (not timed);
   then ``archive.oversight.check.run_check`` in this process exactly as the Celery beat task,
   ``POST /api/v1/oversight/warnings/run`` and ``custody oversight`` call it (on PostgreSQL: the
   set-based SQL path), timed from the call to the commit of its run, printed with the warning counts.
   Goal: < 60 s. ``--compare`` also times the streamed Python path (the one SQLite runs) on the same
   data, for the ratio on the same machine under the same load. ``--scale`` shrinks part 2 for a
   quick look (0.01 = 10^4 of each).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from common import Stack, log, machine, write_result

ACTIVITIES = ["on-site-inspection", "questioning-suspect", "hearing", "service-of-documents", "decision"]


def seed_case(stack: Stack, n_media: int, n_records: int) -> tuple[str, str]:
    from archive.accounts import services as accounts
    from archive.accounts.models import Device, Officer, Role
    from archive.cases import services as cases
    from archive.cases.models import CaseKind, CaseMedia, DocumentKind, LinkSource, Stage, TextRecord
    from archive.coverage.models import RecordActivity
    from archive.db import session_scope
    from archive.media.models import ClockSource, Media, MediaState
    from archive.models import new_id

    engine = stack.engine()
    t0 = datetime(2024, 6, 10, 8, 0, tzinfo=UTC)
    officers = [f"{4000 + i}" for i in range(10)]
    with session_scope(engine) as s:
        clerk, token = accounts.add_user(s, "clerk", Role.RECORDS_MANAGER)
        for b in officers:
            s.add(Officer(badge=b, name=b))
        s.flush()
        for b in officers:
            s.add(Device(serial=f"BC-{b}", officer_badge=b))
        s.flush()
        case = cases.create_case(s, clerk, cases.CaseInput("BENCH-COV", "Coverage bench", CaseKind.CRIMINAL))
        for i in range(n_media):
            mid, b = new_id(), officers[i % len(officers)]
            s.add(
                Media(
                    id=mid,
                    sha256=f"{i:064x}",
                    archived_sha256=f"{i:064x}",
                    size=1,
                    file_name=f"clip{i:04d}.mp4",
                    officer_badge=b,
                    device_serial=f"BC-{b}",
                    recorded_at=t0 + timedelta(minutes=3 * i) + timedelta(seconds=i % 7),
                    clock_offset_s=float(i % 7),
                    clock_source=ClockSource.MEASURED,
                    state=MediaState.READY,
                    object_key=f"originals/{mid}",
                    probe={"kind": "video", "duration_s": 150.0},
                )
            )
            s.flush()
            s.add(
                CaseMedia(
                    case_id=case.id, media_id=mid, source=LinkSource.MANUAL, reason="bench", linked_by="b"
                )
            )
        for j in range(n_records):
            start = t0 + timedelta(seconds=36 * j)
            rec = TextRecord(
                case_id=case.id,
                stage=Stage.INVESTIGATION,  # decision stages need a legal review first (issue 12)
                doc_kind=DocumentKind.INQUIRY_TRANSCRIPT,
                author="4000",
                officers=[officers[j % len(officers)]],
                occurred_from=start,
                occurred_to=start + timedelta(seconds=150),
                body="Statement of the witness. " * 40,
                created_by="clerk",
            )
            s.add(rec)
            s.flush()
            s.add(
                RecordActivity(
                    case_id=case.id,
                    record_id=rec.record_id,
                    activity=ACTIVITIES[j % len(ACTIVITIES)],
                    item_list_version=1,
                    set_by="user:clerk",
                )
            )
    engine.dispose()
    return case.id, token


def timed_coverage(stack: Stack, token: str, case_id: str, runs: int) -> dict[str, Any]:
    import httpx

    from archive.accounts.models import User
    from archive.coverage import services as coverage
    from archive.db import session_scope

    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
        for _ in range(3):
            c.get(f"/api/v1/cases/{case_id}/coverage").raise_for_status()
        times, counts = [], {}
        for _ in range(runs):
            t = time.perf_counter()
            r = c.get(f"/api/v1/cases/{case_id}/coverage")
            times.append(time.perf_counter() - t)
            r.raise_for_status()
            counts = r.json()["counts"]
    engine = stack.engine()
    service = []
    from sqlmodel import select

    for _ in range(runs):
        with session_scope(engine) as s:
            user = s.exec(select(User).where(User.name == "clerk")).one()
            t = time.perf_counter()
            coverage.case_coverage(s, user, case_id, log=False)
            service.append(time.perf_counter() - t)
    engine.dispose()
    times.sort()
    return {
        "runs": runs,
        "median_ms": statistics.median(times) * 1000,
        "p95_ms": times[max(0, int(len(times) * 0.95) - 1)] * 1000,
        "service_median_ms": statistics.median(service) * 1000,
        "counts": counts,
    }


SEED_SQL = [
    # officers and devices: 1,000 of each
    "INSERT INTO officers (badge, name, created_at) SELECT 'O' || g, 'O' || g, now() FROM "
    "generate_series(1, 1000) g",
    "INSERT INTO devices (serial, officer_badge, created_at) SELECT 'D' || g, 'O' || g, now() FROM "
    "generate_series(1, 1000) g",
    # :cases cases in :units agencies
    """INSERT INTO cases (id, agency, number, title, kind, status, stage, created_by, created_at, updated_at)
       SELECT 'c' || lpad(g::text, 35, '0'), 'unit-' || (g % :units), 'N-' || g, 'bench', 'administrative',
              'open', 'investigation', 'bench', now(), now() FROM generate_series(1, :cases) g""",
    # :per records per case, windows of 10 minutes one hour apart
    """INSERT INTO case_records (record_id, version, case_id, stage, doc_kind, title, author, officers,
              occurred_from, occurred_to, body, attachments, created_by, created_at)
       SELECT 'r' || lpad(g::text, 35, '0'), 1, 'c' || lpad(((g - 1) / :per + 1)::text, 35, '0'),
              'investigation',
              'inquiry-transcript', '', 'bench', json_build_array('O' || (g % 1000 + 1)),
              timestamptz '2024-01-01' + ((g - 1) % :per) * interval '1 hour',
              timestamptz '2024-01-01' + ((g - 1) % :per) * interval '1 hour' + interval '10 minutes',
              'x', '[]'::json, 'bench', now() FROM generate_series(1, :records) g""",
    """INSERT INTO record_activities (case_id, record_id, activity, no_recording_reason, item_list_version,
              set_by, set_at)
       SELECT 'c' || lpad(((g - 1) / :per + 1)::text, 35, '0'), 'r' || lpad(g::text, 35, '0'),
              (ARRAY['on-site-inspection', 'questioning-suspect', 'hearing', 'service-of-documents',
                     'decision'])[g % 5 + 1],
              '', 1, 'bench', now() FROM generate_series(1, :records) g""",
    # :linked recordings: one per record window, most cover it, every 7th starts 3 minutes late,
    # every 11th is missing (it is recorded a day later), clocks off by g % 30 seconds (measured)
    """INSERT INTO media (id, sha256, size, content_type, file_name, source_path, officer_badge,
           device_serial,
              recorded_at, received_at, clock_offset_s, clock_source, state, state_reason, object_key, probe,
              updated_at)
       SELECT 'm' || lpad(g::text, 35, '0'), md5(g::text) || md5(g::text), 1, 'video/mp4', 'f.mp4', '',
              'O' || (g % 1000 + 1), 'D' || (g % 1000 + 1),
              timestamptz '2024-01-01' + ((g - 1) % :per) * interval '1 hour'
                + (CASE WHEN g % 7 = 0 THEN interval '3 minutes' ELSE interval '0' END)
                + (CASE WHEN g % 11 = 0 THEN interval '1 day' ELSE interval '0' END)
                + (g % 30) * interval '1 second',
              timestamptz '2024-01-02', (g % 30)::float, 'measured', 'ready', '', 'originals/m' || g,
              json_build_object('kind', 'video', 'duration_s', 600.0), now()
       FROM generate_series(1, :linked) g""",
    """INSERT INTO case_media (case_id, media_id, source, reason, linked_by, linked_at)
       SELECT 'c' || lpad(((g - 1) / :per + 1)::text, 35, '0'), 'm' || lpad(g::text, 35, '0'),
              'auto', 'bench',
              'bench', now() FROM generate_series(1, :linked) g""",
    # the rest of the recordings: never linked (a few hundred are older than N days)
    """INSERT INTO media (id, sha256, size, content_type, file_name, source_path, officer_badge,
           device_serial,
              recorded_at, received_at, clock_offset_s, clock_source, state, state_reason, object_key, probe,
              updated_at)
       SELECT 'u' || lpad(g::text, 35, '0'), md5(g::text), 1, 'video/mp4', 'f.mp4', '', 'O' || (g % 1000 + 1),
              'D' || (g % 1000 + 1), timestamptz '2024-01-01', now() - (g % 10) * interval '1 day',
                     0, 'measured',
              'ready', '', 'originals/u' || g, json_build_object('kind', 'video', 'duration_s', 60.0), now()
       FROM generate_series(1, :unlinked) g""",
    "ANALYZE",
]


def seed_archive(stack: Stack, records: int, recordings: int) -> float:
    from sqlalchemy import text

    per = 10
    cases = records // per
    linked = min(records, recordings)
    params = {
        "cases": cases,
        "per": per,
        "records": records,
        "linked": linked,
        "unlinked": recordings - linked + max(recordings // 100, 10),
        "units": 20,
    }
    engine = stack.engine()
    t = time.monotonic()
    with engine.begin() as conn:
        for sql in SEED_SQL:
            stmt = sql
            for k, v in params.items():
                stmt = stmt.replace(f":{k}", str(v))
            conn.execute(text(stmt))
    engine.dispose()
    return time.monotonic() - t


def timed_check(stack: Stack, method: str = "auto") -> dict[str, Any]:
    from archive.db import session_scope
    from archive.oversight.check import run_check

    engine = stack.engine()
    t = time.perf_counter()
    with session_scope(engine) as s:
        run = run_check(s, unlinked_days=7, method=method)  # type: ignore[arg-type]
        counts = dict(run.counts)
        units = len({r["agency"] for r in run.stats})
        stat_rows = len(run.stats)
    wall = time.perf_counter() - t
    engine.dispose()
    return {"seconds": wall, "counts": counts, "stat_rows_units": units, "stat_rows": stat_rows}


def load() -> str:
    import os

    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def coverage_part(runs: int) -> dict[str, Any]:
    with Stack(with_workers=False) as stack:
        t = time.monotonic()
        case_id, token = seed_case(stack, 200, 1000)
        log(f"seeded the coverage case in {time.monotonic() - t:.1f} s")
        cov = timed_coverage(stack, token, case_id, runs)
    print(
        f"coverage, 200 recordings x 1,000 records: median {cov['median_ms']:.1f} ms, "
        f"p95 {cov['p95_ms']:.1f} ms over HTTP (service alone {cov['service_median_ms']:.1f} ms); "
        f"goal median < 300 ms; statuses {cov['counts']}"
    )
    return cov


def warnings_part(scale: float, compare: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with Stack(with_workers=False, with_api=False) as stack:
        n = int(1_000_000 * scale)
        secs = seed_archive(stack, n, n)
        log(f"seeded {n} records and {n} recordings (+ unlinked) in {secs:.1f} s (not counted)")
        log(f"check (as scheduled) starts, {load()}")
        chk = out["warnings"] = timed_check(stack)
        chk.update({"records": n, "recordings": n, "load_after": load()})
        print(
            f"warnings check, {n:,} records and {n:,} recordings: {chk['seconds']:.1f} s "
            f"(goal < 60 s; {chk['load_after']} at its end); warnings {chk['counts']}"
        )
        if compare:
            log(f"Python path starts, {load()}")
            py = out["warnings_python_path"] = timed_check(stack, "python")
            py["load_after"] = load()
            same = py["counts"] == chk["counts"] and py["stat_rows"] == chk["stat_rows"]
            print(
                f"  the same check by the streamed Python path (SQLite's) on the same data: "
                f"{py['seconds']:.1f} s ({py['load_after']}); same counts and statistics rows: {same}"
            )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--scale", type=float, default=1.0, help="part 2 size as a fraction of 10^6")
    p.add_argument("--skip-warnings", action="store_true")
    p.add_argument("--skip-coverage", action="store_true")
    p.add_argument("--compare", action="store_true", help="also time the Python path on the same data")
    args = p.parse_args()
    log(machine())
    result: dict[str, Any] = {"machine": machine()}
    if not args.skip_coverage:
        result["coverage"] = coverage_part(args.runs)
    if not args.skip_warnings:
        result.update(warnings_part(args.scale, args.compare))
    write_result("coverage", result)


if __name__ == "__main__":
    main()

"""The public decision feed under load: requests/s and latency on one uvicorn worker.

A private stack (PostgreSQL, Redis; no Celery workers) with N published decisions made through the
real services (case, decision document, registration, redaction, approval), then the API as `custody
serve` runs it (one uvicorn process, no access log). Load: C client threads with keep-alive connections
for D seconds on ``GET /public/api/decisions`` (the default page of 50 decisions, redacted text
included), then the same with ``If-None-Match`` (what a cache or a returning browser sends: 304), then
the HTML list page. The per-address rate limit stays on (it costs a Redis round trip per request) but
is raised so that one benchmark client is not refused.

Goal: 200 requests/s with p95 under 50 ms for the feed. The client runs on the same 2-core machine as
the server and takes CPU from it; the figures are a floor.

    .venv/bin/python bench/public_feed.py [--decisions 300] [--clients 8] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from common import Stack, log, machine, write_result

TEXT = (
    "行政处罚决定书\n当事人：{name}，男，身份证号码{idn}，住址：某某省某某市某某区幸福路{n}号。\n"
    "经查，当事人于2025年3月1日驾驶京A{plate}号小型汽车在禁停路段违反规定停放，妨碍其他车辆通行。"
    "以上事实有现场检查笔录、执法记录仪视频、当事人陈述为证。\n"
    "根据《中华人民共和国道路交通安全法》第九十三条第二款之规定，决定给予罚款人民币二百元的行政处罚。\n"
    "如不服本决定，可以在收到本决定书之日起六十日内向某某市人民政府申请行政复议，"
    "或者在六个月内依法向某某区人民法院提起行政诉讼。"
)


def seed(stack: Stack, n: int) -> None:
    from archive.accounts import services as accounts
    from archive.accounts.models import Role
    from archive.cases import services as cases
    from archive.cases.models import CaseKind, DocumentKind, Stage
    from archive.db import session_scope
    from archive.legal import services as legal
    from archive.publicity import decisions
    from archive.publicity.models import DecisionCategory, PartyKind
    from archive.publicity.redaction import id_check_digit

    engine = stack.engine()
    cats = list(DecisionCategory)
    with session_scope(engine) as s:
        clerk = accounts.add_user(s, "clerk", Role.RECORDS_MANAGER)[0]
        pub = accounts.add_user(s, "pub", Role.PUBLISHER)[0]
    for i in range(n):
        with session_scope(engine) as s:
            first17 = f"11010519{80 + i % 20}0101{i % 1000:03d}"
            at = datetime(2025, 3, 3, 2, tzinfo=UTC) + timedelta(days=i % 200)
            case = cases.create_case(
                s, clerk, cases.CaseInput(number=f"B-{i}", title="违法停车", kind=CaseKind.ADMINISTRATIVE)
            )
            # The legal-review gate (issue 12): a proposed decision first (one the catalogue does not
            # list for review), then the decision document.
            legal.submit(
                s,
                clerk,
                case.id,
                legal.ProposedDecision(
                    decision_kind="no-penalty", facts="违法停车", legal_basis=["道路交通安全法 第九十三条"],
                    evidence=[], attest=True,
                ),
            )  # fmt: skip
            body = TEXT.format(name="张三", idn=first17 + id_check_digit(first17), n=i, plate=f"{10000 + i}")
            cases.add_record(
                s,
                clerk,
                case.id,
                cases.RecordInput(
                    stage=Stage.DECISION,
                    doc_kind=DocumentKind.DECISION,
                    author="0815",
                    occurred_from=at,
                    occurred_to=at,
                    body=body,
                ),
            )
            d = decisions.register(
                s,
                pub,
                decisions.DecisionInput(
                    case_id=case.id,
                    category=cats[i % len(cats)],
                    decided_on=at.date(),
                    party_kind=PartyKind.NATURAL_PERSON,
                    party_name="张三",
                    conclusion="罚款人民币二百元",
                ),
            )
            r = decisions.draft_redaction(s, pub, d.id)
            decisions.approve(s, pub, d.id, r.version, r.sha256)
    engine.dispose()


def load(
    url: str, clients: int, seconds: float, server_pid: int, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    import httpx
    import psutil

    server = psutil.Process(server_pid)
    cpu0 = server.cpu_times()

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run() -> None:
        mine: list[float] = []
        codes: dict[int, int] = {}
        with httpx.Client(timeout=10, headers=headers or {}) as c:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = c.get(url)
                r.read()
                mine.append(time.perf_counter() - t0)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
        with lock:
            latencies.extend(mine)
            for k, v in codes.items():
                statuses[k] = statuses.get(k, 0) + v

    threads = [threading.Thread(target=run) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    cpu1 = server.cpu_times()
    cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    latencies.sort()
    return {
        # Server CPU per request: what one core can serve, whatever else the machine is running.
        "server_cpu_ms": cpu_s / max(len(latencies), 1) * 1000,
        "one_core_rps": len(latencies) / cpu_s if cpu_s else 0.0,
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "median_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "statuses": statuses,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--decisions", type=int, default=300)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    # One client address: raise the per-address limit so the benchmark is not refused (it stays on).
    os.environ["CUSTODY_PUBLIC_RATE_LIMIT"] = "1000000/minute"
    log(machine())
    with Stack(with_workers=False) as stack:
        t0 = time.monotonic()
        seed(stack, args.decisions)
        log(f"{args.decisions} decisions published in {time.monotonic() - t0:.1f} s")
        import httpx

        feed = f"{stack.url}/public/api/decisions"
        first = httpx.get(feed)
        assert first.status_code == 200 and first.json()["total"] == args.decisions, first.text[:300]
        for _ in range(20):  # warm-up
            httpx.get(feed)
        pid = stack.procs["api"].pid
        results = {
            "feed": load(feed, args.clients, args.seconds, pid),
            "feed_304": load(feed, args.clients, args.seconds, pid, {"If-None-Match": first.headers["etag"]}),
            "page": load(f"{stack.url}/public/decisions", args.clients, args.seconds, pid),
        }
        size = len(first.content)
    print(f"\npublic feed, one uvicorn worker, {args.decisions} published decisions, {args.clients} clients")
    print(f"  {machine()}")
    print(
        f"  {'what':34} {'req/s':>8} {'median ms':>10} {'p95 ms':>8} {'cpu ms/req':>10} {'1-core req/s':>12}"
        "  statuses"
    )
    labels = {
        "feed": f"GET /public/api/decisions ({size / 1024:.0f} KiB)",
        "feed_304": "  same, If-None-Match (304)",
        "page": "GET /public/decisions (HTML)",
    }
    for key, r in results.items():
        print(
            f"  {labels[key]:34} {r['rps']:8.0f} {r['median_ms']:10.1f} {r['p95_ms']:8.1f} "
            f"{r['server_cpu_ms']:10.2f} {r['one_core_rps']:12.0f}  {r['statuses']}"
        )
    feed_r = results["feed"]
    met = feed_r["rps"] >= 200 and feed_r["p95_ms"] < 50
    print(
        f"  goal: feed >= 200 req/s with p95 < 50 ms: {'met' if met else 'NOT met'}"
        " (as measured, under this load)"
    )
    print(
        f"  server CPU per feed request {feed_r['server_cpu_ms']:.2f} ms: one core serves about "
        f"{feed_r['one_core_rps']:.0f} req/s (latency then depends on what else runs on it)"
    )
    write_result(
        "public_feed",
        {
            "decisions": args.decisions,
            "clients": args.clients,
            "bytes": size,
            "machine": machine(),
            **results,
        },
    )


if __name__ == "__main__":
    main()

"""Run every benchmark in sequence (each in its own process, so each starts clean) and print a summary.

``make bench`` runs this after starting the test services. Figures land in bench/out/*.json too.
Nothing here asserts a timing: the goals are printed beside the figures for a person to judge.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
BENCHES = [
    "ingest_throughput",
    "proxy_ratio",
    "dock_to_ready",
    "memory_4gb",
    "timeline_latency",
    "legal_overdue",
    "public_feed",
]


def load(name: str) -> dict[str, Any] | None:
    path = OUT / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def print_goals() -> None:
    """The rows of issue 15's table, each beside its baseline from the same run."""
    rows: list[tuple[str, ...]] = []
    missing = "not run"
    if r := load("ingest_throughput"):
        rows.append(
            (
                "dock throughput / (minio fput + hashlib)",
                f"{r['ours_MBps']:.0f} MB/s",
                f"{r['baseline_MBps']:.0f} MB/s",
                f"{r['ratio']:.2f}",
                ">= 0.85",
            )
        )
        if "floor_MBps" in r:
            rows.append(
                (
                    "dock throughput / (hash + SSE-C put + re-read)",
                    f"{r['ours_MBps']:.0f} MB/s",
                    f"{r['floor_MBps']:.0f} MB/s",
                    f"{r['ratio_floor']:.2f}",
                    "-",
                )
            )
    else:
        rows.append(("dock throughput / (minio fput + hashlib)", missing, "", "", ">= 0.85"))
    if r := load("dock_to_ready"):
        rows.append(
            (
                "dock-to-ready 10-min 1080p / upload time",
                f"{r['dock_to_ready_s']:.1f} s ({r['state']})",
                f"{r['dock_safe_s']:.1f} s dock SAFE; fput alone {r.get('fput_s', 0):.1f} s",
                f"{r['dock_to_ready_s'] / r['dock_safe_s']:.2f}",
                "<= 1.3",
            )
        )
    else:
        rows.append(("dock-to-ready 10-min 1080p / upload time", missing, "", "", "<= 1.3"))
    if r := load("timeline_latency"):
        st = r["stream"]
        sealed = "SSE-C" if st.get("encrypted") else "clear"
        rows.append(
            (
                f"proxy through API / direct S3 ({sealed})",
                f"{st['api_MBps']:.0f} MB/s",
                f"{st['direct_s3_MBps']:.0f} MB/s",
                f"{st['ratio_api_over_s3']:.2f}",
                ">= 0.9",
            )
        )
        if "clear_s3_MBps" in st:
            rows.append(
                (
                    "proxy through API / clear copy read direct",
                    f"{st['api_MBps']:.0f} MB/s",
                    f"{st['clear_s3_MBps']:.0f} MB/s",
                    f"{st['ratio_api_over_clear_s3']:.2f}",
                    "-",
                )
            )
        if "presigned_MBps" in st:
            rows.append(
                (
                    "proxy on presigned URL / direct S3",
                    f"{st['presigned_MBps']:.0f} MB/s (API hop {st.get('presigned_hop_ms', 0):.0f} ms, "
                    f"then {st.get('presigned_bytes_MBps', 0):.0f} MB/s)",
                    f"{st['direct_s3_MBps']:.0f} MB/s",
                    f"{st['ratio_presigned_over_s3']:.2f}",
                    ">= 0.9",
                )
            )
    else:
        rows.append(("proxy through API / direct S3", missing, "", "", ">= 0.9"))
    if (r := load("ingest_throughput")) and "api_cpu_s_per_GB" in r["ours"]:
        o = r["ours"]
        rows.append(
            (
                "API CPU per GB docked",
                f"{o['api_cpu_s_per_GB']:.2f} s",
                f"{o['api_cpu_s']:.2f} s for {o['bytes'] / 1e9:.2f} GB",
                "-",
                "<= 0.5 s",
            )
        )
    else:
        rows.append(("API CPU per GB docked", missing, "", "", "<= 0.5 s"))
    if r := load("memory_4gb"):
        pk = r["peak"]["worker ingest"]
        idle = r["idle"].get("worker ingest", {"rss": 0.0, "pss": 0.0})
        rows.append(
            (
                "ingest worker tree RSS, 4 GiB file",
                f"{pk['rss']:.0f} MiB RSS ({pk['pss']:.0f} PSS, {pk['procs']:.0f} procs)",
                f"idle {idle['rss']:.0f} MiB RSS",
                "-",
                "< 300 MB",
            )
        )
    else:
        rows.append(("ingest worker tree RSS, 4 GiB file", missing, "", "", "< 300 MB"))
    print("\n===== issue 15 goals (same run)")
    _table(("figure", "ours", "baseline", "ratio", "goal"), rows)


def main() -> int:
    selected = sys.argv[1:] or BENCHES
    status: dict[str, str] = {}
    started = time.monotonic()
    for name in selected:
        (OUT / f"{name}.json").unlink(missing_ok=True)
        print(f"\n===== {name}", flush=True)
        t = time.monotonic()
        rc = subprocess.run([sys.executable, str(HERE / f"{name}.py")], check=False).returncode
        status[name] = f"exit {rc}, {time.monotonic() - t:.0f} s"
    rows: list[tuple[str, str, str, str]] = []
    if r := load("ingest_throughput"):
        rows.append(
            (
                "ingest: dock until SAFE",
                f"{r['ours_MBps']:.0f} MB/s",
                f"{r['baseline_MBps']:.0f} MB/s (hash + fput_object)",
                f"{r['ratio']:.2f} (goal >= 0.85)",
            )
        )
        rows.append(
            (
                "ingest: tus upload phase only",
                f"{r['ours_upload_only_MBps']:.0f} MB/s",
                f"{r['baseline_put_only_MBps']:.0f} MB/s (fput_object only)",
                f"{r['ratio_upload_vs_put']:.2f}",
            )
        )
    if r := load("proxy_ratio"):
        for c in r["clips"]:
            rows.append(
                (
                    f"proxy: {c['clip']}",
                    f"{c['ours_s']:.2f} s make_proxy; {c['derive_s']:.2f} s derive()",
                    f"{c['bare_s']:.2f} s bare ffmpeg",
                    f"{c['ratio']:.2f} bare/ours (goal >= 0.95)",
                )
            )
    if r := load("legal_overdue"):
        rows.append(
            (
                f"legal overdue list, {r['cases']} cases",
                f"{r['http_median_ms']:.1f} ms median (p95 {r['http_p95_ms']:.1f})",
                f"{r['service_median_ms']:.1f} ms in-process",
                "goal median < 100 ms",
            )
        )
    if r := load("dock_to_ready"):
        rows.append(
            (
                "dock to ready, 10 min 1080p",
                f"{r['dock_to_ready_s']:.1f} s ({r['state']})",
                f"hash {r['floor_hash_s']:.1f} s + remux {r['floor_remux_s']:.1f} s",
                "-",
            )
        )
    if r := load("memory_4gb"):
        for name in ("api", "workers (both)", "worker ingest", "worker transcode", "dock client"):
            pk = r["peak"].get(name)
            if pk:
                idle = r["idle"].get(name, {}).get("pss", 0.0)
                goal = " (goal < 300)" if name in ("api", "workers (both)") else ""
                rows.append(
                    (
                        f"peak memory 4 GiB: {name}",
                        f"{pk['pss']:.0f} MiB PSS, {pk['rss']:.0f} MiB RSS",
                        f"idle {idle:.0f} MiB PSS",
                        f"-{goal}",
                    )
                )
    if r := load("public_feed"):
        f = r["feed"]
        rows.append(
            (
                "public feed, one uvicorn worker",
                f"{f['rps']:.0f} req/s, p95 {f['p95_ms']:.0f} ms",
                f"server CPU {f['server_cpu_ms']:.2f} ms/request",
                f"~{f['one_core_rps']:.0f} req/s per free core (goal 200, p95 < 50 ms)",
            )
        )
    print_goals()
    print("\n===== summary")
    machine = next((r["machine"] for n in BENCHES if (r := load(n))), "")
    print(f"machine: {machine}")
    widths = [max(len(row[i]) for row in rows) if rows else 10 for i in range(4)]
    header = ("measure", "ours", "baseline (same run)", "ratio")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    for name, st in status.items():
        print(f"{name}: {st}")
    print(f"total {time.monotonic() - started:.0f} s")
    return 0 if all(s.startswith("exit 0") for s in status.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

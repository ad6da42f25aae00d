"""Dock throughput against a raw S3 baseline, measured in the same run on the same S3 server.

Baseline, per file and strictly sequential: read the file and SHA-256 it (hashlib, 1 MiB reads), then
``minio.fput_object`` it to a bucket of the same server (minio's own multipart, 16 MiB parts here
too, and its default of 3 parallel part uploads). That is the least any ingest must do: hash once,
store once.

Ours: ``custody dock FOLDER`` (bytes straight to S3 on presigned part URLs) wall time from process
start until it has printed SAFE for every file, which it does only after the server re-read the
object from S3 and matched the SHA-256 (verify). The dock uploads the next file while the server
verifies the last. The server's own records split that time into the upload phase (upload created ->
media received) and the verification (received -> media.verify event). The API's CPU time (process
and children) while docking is reported per GB (goal <= 0.5 s).

Files: random bytes (AES-CTR from a seed), not media; the worker declares them unplayable after
verification, which the dock does not wait for.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import time
from pathlib import Path
from typing import Any

from common import (
    CACHE,
    MB,
    MiB,
    Stack,
    empty_bucket,
    log,
    machine,
    minio_client,
    random_file,
    run_dock,
    server_timings,
    write_result,
)

GOAL = 0.85
CPU_GOAL_S_PER_GB = 0.5


def make_files(n: int, size: int) -> Path:
    folder = CACHE / f"ingest-{n}x{size // MiB}MiB"
    for i in range(n):
        random_file(folder / f"clip{i:02d}.bin", size, seed=1000 + i)
    return folder


def baseline(folder: Path) -> dict[str, Any]:
    c = minio_client()
    bucket = f"bench-baseline-{int(time.time())}"
    c.make_bucket(bucket)
    hash_s = put_s = 0.0
    total = 0
    try:
        for f in sorted(folder.iterdir()):
            t0 = time.monotonic()
            h = hashlib.sha256()
            buf = bytearray(MiB)
            view = memoryview(buf)
            with f.open("rb") as fh:
                while n := fh.readinto(view):
                    h.update(view[:n])
            t1 = time.monotonic()
            c.fput_object(bucket, f.name, str(f), part_size=16 * MiB)
            t2 = time.monotonic()
            hash_s += t1 - t0
            put_s += t2 - t1
            total += f.stat().st_size
    finally:
        empty_bucket(bucket, remove=True)
    return {"bytes": total, "hash_s": hash_s, "put_s": put_s, "wall_s": hash_s + put_s}


def floor(folder: Path) -> dict[str, Any]:
    """The same work as the archive's rule asks of any ingest, done by hand, sequentially: hash the
    file, PUT it sealed with an SSE-C key (encryption at rest, as the archive stores it), then GET it
    back with that key and hash what storage holds (the verification). No API, no database, no
    overlap: a floor of the work, not of the wall time."""
    import os

    from minio.sse import SseCustomerKey

    c = minio_client()
    bucket = f"bench-floor-{int(time.time())}"
    c.make_bucket(bucket)
    hash_s = put_s = reread_s = 0.0
    total = 0
    try:
        for f in sorted(folder.iterdir()):
            key = SseCustomerKey(os.urandom(32))
            t0 = time.monotonic()
            h = hashlib.sha256()
            with f.open("rb") as fh:
                while block := fh.read(MiB):
                    h.update(block)
            t1 = time.monotonic()
            c.fput_object(bucket, f.name, str(f), part_size=16 * MiB, sse=key)
            t2 = time.monotonic()
            again = hashlib.sha256()
            resp = c.get_object(bucket, f.name, ssec=key)
            try:
                for chunk in resp.stream(MiB):
                    again.update(chunk)
            finally:
                resp.close()
                resp.release_conn()
            assert again.hexdigest() == h.hexdigest()
            t3 = time.monotonic()
            hash_s += t1 - t0
            put_s += t2 - t1
            reread_s += t3 - t2
            total += f.stat().st_size
    finally:
        empty_bucket(bucket, remove=True)
    return {"bytes": total, "hash_s": hash_s, "put_s": put_s, "reread_s": reread_s,
            "wall_s": hash_s + put_s + reread_s}  # fmt: skip


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children, living and reaped."""
    import psutil

    proc = psutil.Process(pid)
    t = proc.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            c = child.cpu_times()
            total += c.user + c.system
    return float(total)


def ours(folder: Path) -> dict[str, Any]:
    with Stack() as stack:
        api_pid = stack.procs["api"].pid
        cpu0 = _cpu_s(api_pid)
        run = run_dock(stack, folder)
        api_cpu_s = _cpu_s(api_pid) - cpu0
        safe = run.safe()
        timings = server_timings(stack, [s["media_id"] for s in safe])
    total = sum(f.stat().st_size for f in folder.iterdir())
    upload_s = sum(t.get("upload_s", 0.0) for t in timings)
    verify_s = sum(t.get("media.verify", 0.0) for t in timings)
    return {
        "bytes": total,
        "wall_s": run.wall_s,
        "files_safe": len(safe),
        "returncode": run.returncode,
        "upload_s": upload_s,
        "verify_s": verify_s,
        "per_file": timings,
        "safe_at_s": [round(s["t"], 2) for s in safe],
        "api_cpu_s": api_cpu_s,
        "api_cpu_s_per_GB": api_cpu_s / (total / 1e9),
    }


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--mib", type=int, default=256, help="size of each file in MiB")
    args = ap.parse_args()
    log(f"ingest throughput: {args.files} x {args.mib} MiB; {machine()}")
    folder = make_files(args.files, args.mib * MiB)
    # Warm the page cache for both sides alike: we measure the ingest, not the disk.
    for f in folder.iterdir():
        with f.open("rb") as fh:
            while fh.read(8 * MiB):
                pass
    b = baseline(folder)
    fl = floor(folder)
    o = ours(folder)
    mbps = lambda n, s: n / MB / s if s else 0.0  # noqa: E731
    res = {
        "machine": machine(),
        "files": args.files,
        "file_mib": args.mib,
        "baseline": b,
        "floor": fl,
        "ours": o,
        "baseline_MBps": mbps(b["bytes"], b["wall_s"]),
        "baseline_put_only_MBps": mbps(b["bytes"], b["put_s"]),
        "ours_MBps": mbps(o["bytes"], o["wall_s"]),
        "ours_upload_only_MBps": mbps(o["bytes"], o["upload_s"]),
    }
    res["ratio"] = res["ours_MBps"] / res["baseline_MBps"]
    res["floor_MBps"] = mbps(fl["bytes"], fl["wall_s"])
    res["ratio_floor"] = res["ours_MBps"] / res["floor_MBps"]
    res["ratio_upload_vs_put"] = res["ours_upload_only_MBps"] / res["baseline_put_only_MBps"]
    total_mb = b["bytes"] / MB
    print(f"\ningest throughput ({args.files} x {args.mib} MiB = {total_mb:.0f} MB, random bytes)")
    print(f"  machine: {machine()}")
    print(
        f"  baseline  hash+fput_object, sequential: {b['wall_s']:6.2f} s  {res['baseline_MBps']:6.1f} MB/s"
        f"   (hash {b['hash_s']:.2f} s, fput_object {b['put_s']:.2f} s"
        f" = {res['baseline_put_only_MBps']:.1f} MB/s)"
    )
    print(
        f"  floor     hash+SSE-C put+SSE-C re-read:  {fl['wall_s']:6.2f} s  {res['floor_MBps']:6.1f} MB/s"
        f"   (hash {fl['hash_s']:.2f} s, put {fl['put_s']:.2f} s, re-read+hash {fl['reread_s']:.2f} s)"
    )
    print(
        f"  ours      custody dock until all SAFE:  {o['wall_s']:6.2f} s  {res['ours_MBps']:6.1f} MB/s"
        f"   ({o['files_safe']}/{args.files} SAFE, exit {o['returncode']})"
    )
    print(
        f"            of which upload phase:        {o['upload_s']:6.2f} s"
        f"  {res['ours_upload_only_MBps']:6.1f} MB/s"
        f"   server verify (received->verified): {o['verify_s']:.2f} s"
    )
    print(f"  ratio ours/baseline (end to end):        {res['ratio']:.2f}   (goal >= {GOAL})")
    print(f"  ratio ours/floor (same work, sequential): {res['ratio_floor']:.2f}")
    print(
        f"  API CPU while docking: {o['api_cpu_s']:.2f} s = {o['api_cpu_s_per_GB']:.2f} s per GB"
        f"   (goal <= {CPU_GOAL_S_PER_GB})"
    )
    print(f"  ratio upload phase / fput_object alone:  {res['ratio_upload_vs_put']:.2f}")
    for t in o["per_file"]:
        print(
            f"    {t['media_id'][:8]}  {t['size'] / MB:7.1f} MB  upload {t.get('upload_s', 0):5.2f} s"
            f"  verify +{t.get('media.verify', 0):5.2f} s  state {t['state']}"
        )
    write_result("ingest_throughput", res)
    return res


if __name__ == "__main__":
    main()

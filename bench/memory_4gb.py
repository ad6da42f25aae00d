"""Peak memory while a 4 GiB file goes dock -> tus upload -> verify -> probe -> unplayable + signed.

The file is 4 GiB of random bytes (AES-CTR from a seed: incompressible, so hashing and S3 see real
work; it is not media, so the worker probes it, finds it unplayable and signs it without a proxy).
Sampled every 50 ms (bench/common.PeakRSS), children included:
- the API process (uvicorn, one process);
- the worker trees: ingest (Celery main + 2 pool processes) and transcode (main + 1), each and summed;
- the dock client (``custody dock``).
For each: peak summed RSS (over-counts pages a forked pool shares), peak summed PSS (shares them out)
and the largest single process. Idle figures (before the dock starts) are printed beside them.
Goal: < 300 MB for the API and for the worker tree.

Mind the machine: the test S3 server keeps objects in RAM (memstore, 8 GiB cap); the object is deleted
at the end (with the stack's buckets), and the 4 GiB file too unless --keep-file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    CACHE,
    OUT,
    MiB,
    PeakRSS,
    Stack,
    log,
    machine,
    random_file,
    run_dock,
    server_timings,
    wait_state,
    write_result,
)

GOAL_MB = 300


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=4.0)
    ap.add_argument("--keep-file", action="store_true", help="keep the random file in bench/out/cache")
    args = ap.parse_args()
    size = int(args.gib * 1024 * MiB)
    free = shutil.disk_usage(OUT.parent).free
    if free < size + 4 * 1024 * MiB:
        raise SystemExit(f"not enough disk: {free / 1024**3:.1f} GiB free, need {size / 1024**3 + 4:.1f}")
    log(f"memory with a {args.gib:g} GiB file; {machine()}")
    t = time.monotonic()
    big = random_file(CACHE / f"random-{args.gib:g}GiB.bin", size, seed=4242)
    log(f"random file ready in {time.monotonic() - t:.1f} s")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-mem-", dir=OUT) as folder:
            os.link(big, Path(folder) / big.name)
            with Stack() as stack:
                p = stack.procs
                roots = {
                    "api": [p["api"].pid],
                    "worker ingest": [p["ingest"].pid],
                    "worker transcode": [p["transcode"].pid],
                    "workers (both)": [p["ingest"].pid, p["transcode"].pid],
                    "dock client": [],
                }
                with PeakRSS({k: v for k, v in roots.items() if v}) as idle:
                    time.sleep(2)
                t0 = time.monotonic()
                with PeakRSS(roots) as peak:
                    run = run_dock(stack, Path(folder), on_start=roots["dock client"].append)
                    safe = run.safe()
                    if not safe:
                        raise SystemExit(f"dock failed:\n{run.stderr[-2000:]}")
                    media_id = safe[0]["media_id"]
                    state, t_end = wait_state(stack, media_id, {"ready", "unplayable", "quarantined"})
                steps = server_timings(stack, [media_id])[0]
    finally:
        if not args.keep_file:
            big.unlink(missing_ok=True)
    res = {
        "machine": machine(),
        "bytes": size,
        "state": state,
        "wall_s": t_end - t0,
        "dock_wall_s": run.wall_s,
        "steps": steps,
        "idle": idle.peak,
        "peak": peak.peak,
        "samples": peak.samples,
    }
    print(f"\npeak memory, {size / 1024**3:g} GiB random file docked to '{state}' in {t_end - t0:.1f} s")
    every = (t_end - t0) / max(peak.samples, 1) * 1000
    print(f"  machine: {machine()}")
    print(f"  {peak.samples} samples, one per {every:.0f} ms (50 ms asked; reading PSS costs time)")
    print(f"  {'process tree':18} {'peak RSS':>9} {'peak PSS':>9} {'largest':>8} {'procs':>5}   idle RSS/PSS")
    for name, pk in peak.peak.items():
        base = idle.peak.get(name, {"rss": 0.0, "pss": 0.0})
        flag = ""
        if name in ("api", "workers (both)"):
            flag = "  ok" if pk["pss"] < GOAL_MB else f"  OVER {GOAL_MB} MB"
        print(
            f"  {name:18} {pk['rss']:7.0f}MB {pk['pss']:7.0f}MB {pk['max_proc_rss']:6.0f}MB"
            f" {pk['procs']:5.0f}"
            f"   {base['rss']:5.0f}/{base['pss']:.0f} MB{flag}"
        )
    print(f"  (MB here = MiB; goal < {GOAL_MB} for the API and for the worker tree, judged on PSS)")
    print(
        f"  timings: tus upload {steps.get('upload_s', 0):.1f} s; after received: "
        + ", ".join(
            f"{k.removeprefix('media.')} {v:.1f} s" for k, v in steps.items() if k.startswith("media.")
        )
    )
    write_result("memory_4gb", res)
    return res


if __name__ == "__main__":
    main()

"""Dock-to-ready wall time for a 10-minute 1080p30 H.264 clip (~616 MB).

Clock starts when ``custody dock FOLDER`` is spawned and stops when ``GET /api/v1/media/{id}`` (polled
every 0.1 s once the dock has printed the media id) says ``ready``: upload, verification (re-read from
S3 and SHA-256), probe, proxy (a remux for this clip), poster, signature. The server's own records
split the time by step. Baselines in the same run: the upload time alone, as the dock's own time
until it printed SAFE (bytes stored and their SHA-256 verified: the issue's figure) and as a bare
``minio.fput_object`` of the file; for scale, SHA-256 of the file plus the bare remux command.
Goal: dock-to-ready / upload time (dock until SAFE) <= 1.3.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    OUT,
    Stack,
    empty_bucket,
    log,
    long_h264_clip,
    machine,
    minio_client,
    run_dock,
    server_timings,
    wait_state,
    write_result,
)

TERMINAL = {"ready", "unplayable", "quarantined", "duplicate"}


def faststart_copy(clip: Path) -> Path:
    out = clip.with_name(clip.stem + "_faststart.mp4")
    if not out.exists():
        tmp = out.with_suffix(".tmp.mp4")
        argv = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(clip)]
        argv += ["-map", "0", "-c", "copy", "-movflags", "+faststart", str(tmp)]
        subprocess.run(argv, check=True)
        tmp.replace(out)
    return out


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument(
        "--faststart",
        action="store_true",
        help="the same clip with its index moved to the front (the original is its own proxy)",
    )
    args = ap.parse_args()
    log(f"dock to ready; {machine()}")
    clip = long_h264_clip(args.minutes)
    if args.faststart:
        clip = faststart_copy(clip)
    size = clip.stat().st_size
    with tempfile.TemporaryDirectory(prefix="bench-dock-", dir=OUT) as folder:
        # A hard link: the dock skips symbolic links, and a copy would cost 616 MB of disk.
        os.link(clip, Path(folder) / clip.name)
        with Stack() as stack:
            t0 = time.monotonic()
            run = run_dock(stack, Path(folder))
            safe = run.safe()
            if not safe:
                raise SystemExit(f"dock failed:\n{run.stderr[-2000:]}")
            media_id = safe[0]["media_id"]
            state, t_end = wait_state(stack, media_id, TERMINAL)
            total = t_end - t0
            steps = server_timings(stack, [media_id])[0]
    # Scale: the least work on these bytes (hash once, remux once from a local file).
    t = time.monotonic()
    h = hashlib.sha256()
    with clip.open("rb") as fh:
        while block := fh.read(1024 * 1024):
            h.update(block)
    hash_s = time.monotonic() - t
    with tempfile.TemporaryDirectory(prefix="bench-remux-") as tmp:
        t = time.monotonic()
        remux = ["-map", "0:V:0", "-map", "0:a:0", "-c", "copy", "-movflags", "+faststart", f"{tmp}/r.mp4"]
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(clip), *remux], check=True
        )
        remux_s = time.monotonic() - t
    c = minio_client()
    bucket = f"bench-fput-{int(time.time())}"
    c.make_bucket(bucket)
    try:
        t = time.monotonic()
        c.fput_object(bucket, clip.name, str(clip), part_size=16 * 1024 * 1024)
        fput_s = time.monotonic() - t
    finally:
        empty_bucket(bucket, remove=True)
    res = {
        "machine": machine(),
        "bytes": size,
        "fput_s": fput_s,
        "ratio_ready_over_safe": total / safe[0]["t"],
        "ratio_ready_over_fput": total / fput_s,
        "state": state,
        "dock_to_ready_s": total,
        "clip": clip.name,
        "dock_safe_s": safe[0]["t"],
        "dock_exit_s": run.wall_s,
        "steps": steps,
        "floor_hash_s": hash_s,
        "floor_remux_s": remux_s,
    }
    print(f"\ndock to ready: {clip.name} ({size / 1e6:.0f} MB, {args.minutes} min), {machine()}")
    print(f"  dock start -> GET /media/{{id}} says {state}: {total:6.2f} s")
    print(f"  dock start -> dock printed SAFE:           {safe[0]['t']:6.2f} s")
    print(
        "  server steps (s after media received): "
        + ", ".join(f"{k.removeprefix('media.')} {v:.2f}" for k, v in steps.items() if k.startswith("media."))
        + f"; tus upload phase {steps.get('upload_s', 0):.2f} s"
    )
    print(f"  for scale: SHA-256 of the file {hash_s:.2f} s, bare local remux {remux_s:.2f} s")
    print(f"  baseline: fput_object of the file alone {fput_s:.2f} s")
    print(
        f"  ratio dock-to-ready / dock-until-SAFE: {res['ratio_ready_over_safe']:.2f} (goal <= 1.3);"
        f" / fput_object alone: {res['ratio_ready_over_fput']:.2f}"
    )
    write_result("dock_to_ready_faststart" if args.faststart else "dock_to_ready", res)
    return res


if __name__ == "__main__":
    main()

"""Proxy making through the pipeline against the bare ffmpeg command for the same job.

For each clip the original is put in the stack's originals bucket and read, as the worker reads it,
through a presigned GET URL (ffmpeg range requests to S3):

- bare:  ``subprocess.run(archive.media.ffmpeg.proxy_command(url, facts, out, height=720))``, the exact argv
         make_proxy runs, stdout/stderr to /dev/null;
- ours:  ``archive.media.ffmpeg.make_proxy(url, facts, dir, height=720, ...)``: the same argv under the
         watchdog (progress and stderr readers, stall and time limits, corruption verdict);
- also:  ``archive.ingest.pipeline.derive(ctx, id, sha)`` on a media row in state "probed", which is what the
         transcode task runs: make_proxy + SHA-256 of the proxy + upload to S3 + poster + its upload +
         database writes. Reported, not part of the ratio (bare ffmpeg makes no poster).

Clips: (a) remux of a 10-minute 1080p30 H.264 ~8 Mbit/s clip, (b) transcode of a 30 s 1080p HEVC clip
to 720p H.264. Runs alternate bare/ours; the figures are medians. Ratio = bare / ours (1.0 = no cost).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from common import Stack, hevc_clip, log, long_h264_clip, machine, write_result

GOAL = 0.95


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1024 * 1024):
            h.update(block)
    return h.hexdigest()


def probed_row(stack: Stack, engine: Any, key: str, path: Path, facts: Any) -> tuple[str, str]:
    """A media row in state PROBED for the object at ``key``, as the probe step leaves it."""
    from archive.accounts.models import Device, Officer
    from archive.db import session_scope
    from archive.media.models import Media, MediaState

    sha = sha256_of(path)
    with session_scope(engine) as s:
        if s.get(Officer, stack.officer) is None:
            s.add(Officer(badge=stack.officer, name=stack.officer))
        if s.get(Device, "BC-BENCH-1") is None:
            s.add(Device(serial="BC-BENCH-1", officer_badge=stack.officer))
        s.flush()
        m = Media(
            sha256=sha,
            size=path.stat().st_size,
            content_type="video/mp4",
            file_name=path.name,
            officer_badge=stack.officer,
            device_serial="BC-BENCH-1",
            state=MediaState.PROBED,
            object_key=key,
            probe=facts.to_json(),
        )
        s.add(m)
        s.flush()
        return m.id, sha


def bench_clip(stack: Stack, label: str, path: Path, rounds: int) -> dict[str, Any]:
    from archive.config import get_settings
    from archive.ingest import pipeline
    from archive.media import ffmpeg as media
    from archive.signing import Keyring

    s = get_settings()
    store = stack.store()
    key = f"bench/{path.name}"
    store.put_file(store.originals, key, path, "video/mp4")
    url = store.presigned_get(store.originals, key, timedelta(hours=2))
    facts = media.probe(url)
    engine = stack.engine()
    ctx = pipeline.Context(engine=engine, store=store, keyring=Keyring(s.resolved_key_dir()), settings=s)
    bare_s: list[float] = []
    ours_s: list[float] = []
    derive_s: list[float] = []
    method = ""
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmpd:
        tmp = Path(tmpd)
        # One untimed bare run first: the first read of the object warms RGW and the page cache alike.
        argv = media.proxy_command(url, facts, tmp / "warm.mp4", height=s.proxy_height)
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i in range(rounds):
            out = tmp / f"bare{i}.mp4"
            argv = media.proxy_command(url, facts, out, height=s.proxy_height)
            t0 = time.monotonic()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            bare_s.append(time.monotonic() - t0)
            out.unlink()

            t0 = time.monotonic()
            proxy = media.make_proxy(
                url,
                facts,
                tmp / f"ours{i}",
                height=s.proxy_height,
                stall_s=s.ffmpeg_stall_s,
                timeout_s=s.transcode_time_limit_s,
            )
            ours_s.append(time.monotonic() - t0)
            method = proxy.method
            proxy.path.unlink()

            media_id, sha = probed_row(stack, engine, key, path, facts)
            t0 = time.monotonic()
            nxt = pipeline.derive(ctx, media_id, sha)
            derive_s.append(time.monotonic() - t0)
            if nxt is not pipeline.Step.SIGN:
                log(f"derive of {label} returned {nxt}, expected sign")
    engine.dispose()
    bare, ours, derive = (statistics.median(x) for x in (bare_s, ours_s, derive_s))
    return {
        "clip": label,
        "file": path.name,
        "bytes": path.stat().st_size,
        "duration_s": facts.duration_s,
        "method": method,
        "bare_s": bare,
        "ours_s": ours,
        "derive_s": derive,
        "bare_runs": bare_s,
        "ours_runs": ours_s,
        "derive_runs": derive_s,
        "ratio": bare / ours,
    }


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--remux-rounds", type=int, default=5)
    ap.add_argument("--transcode-rounds", type=int, default=3)
    args = ap.parse_args()
    log(f"proxy ratio; {machine()}")
    clips = [
        ("remux 10 min 1080p H.264", long_h264_clip(10), args.remux_rounds),
        ("transcode 30 s 1080p HEVC", hevc_clip(30), args.transcode_rounds),
    ]
    results = []
    with Stack(with_workers=False, with_api=False) as stack:
        for label, path, rounds in clips:
            log(f"{label}: {rounds} rounds")
            results.append(bench_clip(stack, label, path, rounds))
    print(f"\nproxy: pipeline vs bare ffmpeg (argv: archive.media.ffmpeg.proxy_command), {machine()}")
    print(f"  {'clip':28} {'method':9} {'bare':>8} {'make_proxy':>11} {'bare/ours':>9} {'derive()':>9}")
    for r in results:
        print(
            f"  {r['clip']:28} {r['method']:9} {r['bare_s']:7.2f}s {r['ours_s']:10.2f}s {r['ratio']:9.3f}"
            f" {r['derive_s']:8.2f}s"
        )
        runs = ", ".join(f"{b:.2f}/{o:.2f}" for b, o in zip(r["bare_runs"], r["ours_runs"], strict=True))
        der = ", ".join(f"{d:.2f}" for d in r["derive_runs"])
        print(f"    runs bare/ours (s): {runs}; derive() (proxy+hash+S3 put+poster+DB) runs: {der}")
    print(f"  goal: bare/ours >= {GOAL}")
    res = {"machine": machine(), "clips": results}
    write_result("proxy_ratio", res)
    return res


if __name__ == "__main__":
    main()

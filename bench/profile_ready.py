"""Where dock-to-ready's time goes after the last part lands: the 10-minute clip docked with py-spy
attached to the ingest and transcode workers (children included) and every ffmpeg/ffprobe the workers
start timed by polling; prints the server's steps, each media tool run (start, end, CPU seconds) and
the top frames of each worker. Writes collapsed stacks to bench/out/profile-ready-*.txt.
Not part of ``make bench`` (py-spy skews timings). Needs py-spy and ptrace permission."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import OUT, Stack, log, long_h264_clip, machine, run_dock, server_timings, wait_state
from profile_ingest import top

TERMINAL = {"ready", "unplayable", "quarantined", "duplicate"}


def watch_tools(pids: list[int], stop: threading.Event, t0: float, out: dict[int, dict[str, Any]]) -> None:
    """ffmpeg/ffprobe descendants of ``pids``: first and last time seen, CPU seconds, what they made."""
    import psutil

    roots = [psutil.Process(p) for p in pids]
    while not stop.is_set():
        now = time.monotonic() - t0
        for root in roots:
            try:
                kids = root.children(recursive=True)
            except psutil.Error:
                continue
            for k in kids:
                try:
                    name = k.name()
                    if name not in ("ffmpeg", "ffprobe"):
                        continue
                    cpu = k.cpu_times()
                    argv = k.cmdline()
                except psutil.Error:
                    continue
                rec = out.setdefault(k.pid, {"tool": name, "first": now, "argv": argv})
                rec["last"] = now
                rec["cpu_s"] = cpu.user + cpu.system
        stop.wait(0.05)


def _what(argv: list[str]) -> str:
    if argv and argv[0].endswith("ffprobe"):
        return "probe"
    tail = " ".join(argv[-6:])
    if "image2" in tail or "poster" in tail:
        return "poster"
    if "null" in argv:
        return "proxy check (original as proxy)"
    return "proxy"


def main() -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    clip = long_h264_clip(10)
    log(f"profile dock-to-ready: {clip.name}; {machine()}")
    tools: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-prof-", dir=OUT) as folder:
        os.link(clip, Path(folder) / clip.name)
        with Stack() as stack:
            outs = {n: OUT / f"profile-ready-{n}.txt" for n in ("ingest", "transcode")}
            spies = []
            for name in outs:
                argv = [spy, "record", "--pid", str(stack.procs[name].pid), "--format", "raw"]
                argv += ["--subprocesses", "--rate", "50", "--nonblocking", "--output", str(outs[name])]
                spies.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1)
            stop = threading.Event()
            t0 = time.monotonic()
            watcher = threading.Thread(
                target=watch_tools, args=(stack.worker_pids, stop, t0, tools), daemon=True
            )
            watcher.start()
            run = run_dock(stack, Path(folder))
            safe = run.safe()
            if not safe:
                raise SystemExit(f"dock failed:\n{run.stderr[-2000:]}")
            state, t_end = wait_state(stack, safe[0]["media_id"], TERMINAL)
            stop.set()
            watcher.join()
            steps = server_timings(stack, [safe[0]["media_id"]])[0]
            for s in spies:
                s.send_signal(2)
                s.wait(30)
    print(f"\ndock-to-ready under py-spy: {t_end - t0:.1f} s ({state}); dock SAFE at {safe[0]['t']:.1f} s")
    print(f"  {machine()}")
    print(
        "  server steps (s after received): "
        + ", ".join(f"{k} {v:.2f}" for k, v in steps.items() if k.startswith(("upload", "media.")))
    )
    print("  media tools (s since dock start; CPU s):")
    for rec in sorted(tools.values(), key=lambda r: r["first"]):
        print(
            f"    {_what(rec['argv']):34s} {rec['first']:6.2f} -> {rec['last']:6.2f}"
            f"  ({rec['last'] - rec['first']:5.2f} s, CPU {rec.get('cpu_s', 0):5.2f} s)"
        )
    for name, path in outs.items():
        if not path.exists():
            print(f"  {name}: no profile (py-spy could not attach?)")
            continue
        print(f"  {name}: top frames by own time")
        for leaf, share in top(path, 14):
            print(f"    {share * 100:5.1f}%  {leaf[:120]}")


if __name__ == "__main__":
    main()

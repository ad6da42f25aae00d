"""Where the dock's time goes: ``custody dock`` of N random files under py-spy, with py-spy also
attached to the API and the ingest worker, each writing collapsed stacks to bench/out/profile-*.txt;
prints the top frames (own time) of each process. Not part of ``make bench`` (py-spy skews timings).
Needs py-spy (pip install py-spy) and ptrace permission."""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import CACHE, OUT, MiB, Stack, dock_cmd, log, machine, random_file


def top(path: Path, n: int = 12) -> list[tuple[str, float]]:
    """Own-time share of the leaf frames in a py-spy collapsed-stack file."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        leaf = stack.split(";")[-1]
        own[leaf] += int(count)
        total += int(count)
    return [(leaf, c / max(total, 1)) for leaf, c in own.most_common(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2)
    ap.add_argument("--mib", type=int, default=256)
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    folder = CACHE / f"profile-{args.files}x{args.mib}MiB"
    for i in range(args.files):
        random_file(folder / f"clip{i:02d}.bin", args.mib * MiB, seed=2000 + i)
    log(f"profile: {args.files} x {args.mib} MiB; {machine()}")
    with Stack() as stack:
        outs = {name: OUT / f"profile-{name}.txt" for name in ("dock", "api", "ingest")}
        spies = []
        for name in ("api", "ingest"):
            argv = [spy, "record", "--pid", str(stack.procs[name].pid), "--format", "raw"]
            argv += ["--rate", "50", "--nonblocking", "--output", str(outs[name])]
            spies.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1)
        state = stack.tmp / "profile-state.json"
        env = {**os.environ, **stack.env}
        t0 = time.monotonic()
        subprocess.run(
            [spy, "record", "--format", "raw", "--rate", "50", "--nonblocking", "--output", str(outs["dock"]),
             "--", *dock_cmd(stack, folder, state)],
            env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wall = time.monotonic() - t0
        time.sleep(3)  # the last verification
        for s in spies:
            s.send_signal(2)
            s.wait(30)
    print(f"\nprofile of custody dock, {args.files} x {args.mib} MiB, {wall:.1f} s under py-spy; {machine()}")
    for name, path in outs.items():
        if not path.exists():
            print(f"  {name}: no profile (py-spy could not attach?)")
            continue
        print(f"  {name}: top frames by own time")
        for leaf, share in top(path):
            print(f"    {share * 100:5.1f}%  {leaf[:120]}")


if __name__ == "__main__":
    main()

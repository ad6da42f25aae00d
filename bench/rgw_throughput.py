"""S3 throughput of the local Ceph cluster (deploy/cluster.sh: 3 bluestore OSDs, size 3, 2 RGWs behind
haproxy) beside the one-node test gateway (memstore, size 1), with the `minio` client the archive uses.

For each target: PUT of N objects of SIZE (multipart, 16 MiB parts, as the API writes originals) by
1 and by 4 client threads at once, then GET of the same objects (streamed to nowhere). Also: the
cluster's start time from nothing (`CLUSTER_FRESH=1 deploy/cluster.sh up`), with --start.

    .venv/bin/python bench/rgw_throughput.py [--size-mib 64] [--count 8] [--start]

Figures are for sizing (docs/operations.md): client, gateways and three OSDs share 2 cores here, so
the cluster pays triple replication with the same CPU the one node has to itself. Decimal MB/s.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import MB, ROOT, MiB, log, machine, random_file, service_env, write_result


def cluster_env(fresh: bool = False) -> tuple[dict[str, str], float]:
    env = {**os.environ, "CLUSTER_FRESH": "1" if fresh else "0"}
    t0 = time.monotonic()
    out = subprocess.run(
        ["bash", str(ROOT / "deploy" / "cluster.sh"), "up"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    took = time.monotonic() - t0
    vals = {}
    for line in out.stdout.splitlines():
        k, _, v = line.removeprefix("export ").partition("=")
        vals[k] = shlex.split(v)[0]
    return vals, took


def client(endpoint: str, ak: str, sk: str) -> Any:
    import urllib3
    from minio import Minio

    http = urllib3.PoolManager(maxsize=16, timeout=urllib3.Timeout(connect=5, read=300))
    return Minio(endpoint, access_key=ak, secret_key=sk, secure=False, region="us-east-1", http_client=http)


def run_target(name: str, c: Any, path: Path, count: int) -> dict[str, Any]:
    bucket = f"bench-rgw-{uuid.uuid4().hex[:8]}"
    c.make_bucket(bucket)
    size = path.stat().st_size
    out: dict[str, Any] = {"target": name}
    try:
        for threads in (1, 4):
            keys = [f"t{threads}/o{i}" for i in range(count)]

            def put(chunk: list[str]) -> None:
                for k in chunk:
                    c.fput_object(bucket, k, str(path), part_size=16 * MiB)

            def get(chunk: list[str]) -> None:
                for k in chunk:
                    r = c.get_object(bucket, k)
                    try:
                        for _ in r.stream(MiB):
                            pass
                    finally:
                        r.close()
                        r.release_conn()

            for op, fn in (("put", put), ("get", get)):
                parts = [keys[i::threads] for i in range(threads)]
                ts = [threading.Thread(target=fn, args=(p,)) for p in parts]
                t0 = time.monotonic()
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
                dt = time.monotonic() - t0
                out[f"{op}_x{threads}_MBps"] = round(count * size / dt / MB, 1)
                log(
                    f"{name}: {op} {count} x {size // MiB} MiB by {threads} thread(s): "
                    f"{count * size / dt / MB:.0f} MB/s"
                )
    finally:
        for o in c.list_objects(bucket, recursive=True):
            c.remove_object(bucket, o.object_name)
        c.remove_bucket(bucket)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument(
        "--start", action="store_true", help="also time a fresh cluster start (wipes var/cluster)"
    )
    a = ap.parse_args()
    log(machine())
    result: dict[str, Any] = {"machine": machine(), "object_MiB": a.size_mib, "objects": a.count}
    if a.start:
        subprocess.run(["bash", str(ROOT / "deploy" / "cluster.sh"), "down"], check=True, capture_output=True)
        _, took = cluster_env(fresh=True)
        result["cluster_fresh_start_s"] = round(took, 1)
        log(f"cluster fresh start: {took:.1f} s")
    cl, _ = cluster_env()
    path = random_file(ROOT / "bench" / "out" / "cache" / f"rgw-{a.size_mib}MiB.bin", a.size_mib * MiB, 5)
    svc = service_env()
    ak, sk = cl["CUSTODY_CLUSTER_S3_ACCESS_KEY"], cl["CUSTODY_CLUSTER_S3_SECRET_KEY"]
    targets = [
        ("cluster via haproxy (size 3, bluestore)", client(cl["CUSTODY_CLUSTER_S3_ENDPOINT"], ak, sk)),
        ("cluster, one gateway direct", client(cl["CUSTODY_CLUSTER_RGW_ENDPOINTS"].split(",")[1], ak, sk)),
        (
            "one node (test profile, size 1, memstore)",
            client(svc["CUSTODY_S3_ENDPOINT"], svc["CUSTODY_S3_ACCESS_KEY"], svc["CUSTODY_S3_SECRET_KEY"]),
        ),
    ]
    result["targets"] = [run_target(name, c, path, a.count) for name, c in targets]
    print(f"\nS3 throughput, {a.count} objects x {a.size_mib} MiB, minio client, decimal MB/s ({machine()})")
    print(f"{'target':45} {'PUT x1':>8} {'PUT x4':>8} {'GET x1':>8} {'GET x4':>8}")
    for t in result["targets"]:
        print(
            f"{t['target']:45} {t['put_x1_MBps']:8.0f} {t['put_x4_MBps']:8.0f} "
            f"{t['get_x1_MBps']:8.0f} {t['get_x4_MBps']:8.0f}"
        )
    if "cluster_fresh_start_s" in result:
        print(f"cluster fresh start: {result['cluster_fresh_start_s']} s")
    write_result("rgw_throughput", result)


if __name__ == "__main__":
    main()

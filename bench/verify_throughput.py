"""Verification throughput against a plain hashlib read of the same objects from the same S3 server.

Baseline: for each object, ``minio.get_object`` and SHA-256 the body in 1 MiB reads (hashlib), strictly
sequential. Ours: ``archive.audit.services.verify_media`` over the same objects (archived media rows
in PostgreSQL, read in a short transaction, then the object streamed, hashed and compared; the
custody-log cross-check). Alternating rounds; the best round of each. Goal: ratio >= 0.9.

    .venv/bin/python bench/verify_throughput.py [--files 8 --mib 64 --rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import time

from common import CACHE, MB, MiB, Stack, log, machine, minio_client, random_file, write_result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from archive import events
    from archive.accounts.models import Device, Officer
    from archive.audit import services as audit
    from archive.audit.models import Report
    from archive.config import get_settings
    from archive.db import session_scope
    from archive.media.models import Media, MediaState
    from archive.signing import Keyring

    with Stack(with_workers=False, with_api=False) as stack:
        engine, store = stack.engine(), stack.store()
        ring = Keyring(get_settings().resolved_key_dir())
        client = minio_client()
        ids: list[str] = []
        keys: list[str] = []
        folder = CACHE / f"verify-{args.files}x{args.mib}MiB"
        folder.mkdir(parents=True, exist_ok=True)
        with session_scope(engine) as s:
            s.add(Device(serial="BC-1", officer_badge=stack.officer))
            if s.get(Officer, stack.officer) is None:
                s.add(Officer(badge=stack.officer))
            s.flush()
            for i in range(args.files):
                path = random_file(folder / f"f{i}.bin", args.mib * MiB, seed=100 + i)
                sha = hashlib.sha256(path.read_bytes()).hexdigest()
                key = f"originals/bench-{i}"
                store.put_file(store.originals, key, path, "application/octet-stream")
                m = Media(
                    sha256=sha,
                    archived_sha256=sha,
                    size=path.stat().st_size,
                    file_name=path.name,
                    officer_badge=stack.officer,
                    device_serial="BC-1",
                    state=MediaState.VERIFIED,
                    object_key=key,
                )
                s.add(m)
                s.flush()
                events.record(
                    s,
                    actor="system:worker",
                    action="media.verify",
                    subject_type="media",
                    subject_id=m.id,
                    details={"to": "verified", "sha256": sha, "size": m.size},
                )
                ids.append(m.id)
                keys.append(key)
        total = args.files * args.mib * MiB
        base, ours = [], []
        for r in range(args.rounds):
            t = time.perf_counter()
            for key in keys:
                # the same read minio's client does, with the object's SSE-C key (encryption at rest)
                ssec = store.keys.sse(store.keys.current, store.originals, key) if store.keys else None
                resp = client.get_object(store.originals, key, ssec=ssec)
                h = hashlib.sha256()
                try:
                    while chunk := resp.read(MiB):
                        h.update(chunk)
                finally:
                    resp.close()
                    resp.release_conn()
            base.append(total / (time.perf_counter() - t) / MB)
            t = time.perf_counter()
            rep = Report(started_at=audit.utcnow())
            audit.verify_media(engine, store, ring, ids, rep)
            ours.append(total / (time.perf_counter() - t) / MB)
            assert rep.ok and rep.objects_hashed == args.files, rep.discrepancies
            log(f"round {r + 1}: hashlib {base[-1]:.0f} MB/s, verify {ours[-1]:.0f} MB/s")
        result = {
            "machine": machine(),
            "objects": args.files,
            "object_mib": args.mib,
            "baseline_mb_s": round(max(base), 1),
            "verify_mb_s": round(max(ours), 1),
            "ratio": round(max(ours) / max(base), 3),
            "rounds": {"baseline": [round(x, 1) for x in base], "verify": [round(x, 1) for x in ours]},
        }
        engine.dispose()
    for k, v in result.items():
        print(f"{k:16} {v}")
    write_result("verify_throughput", result)


if __name__ == "__main__":
    main()

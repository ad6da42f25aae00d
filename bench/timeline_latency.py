"""Case review: timeline latency for a big case, and proxy streaming through the API against S3.

1. Timeline: a case with 200 linked media items and 1,000 text records on PostgreSQL (the Stack's own
   database). Media rows are written as the pipeline leaves them (probe facts, a proxy and a poster
   each); the records go through ``archive.cases.services.add_record``, so the 200 links are made by
   the auto-link rule itself. Then ``GET /api/v1/cases/{id}/timeline`` over HTTP from the API process
   (uvicorn, as ``custody serve`` runs it): a few warm-up calls, then N timed calls; median and p95
   wall time as the client sees it, and the response size. The call writes its custody event too.
2. Streaming: one 256 MiB object in the derived bucket, registered as a media item's proxy.
   Written through the archive's store (SSE-C with encryption at rest on, the default). Ours:
   ``GET /api/v1/media/{id}/proxy`` streamed to nowhere (auth, the custody event, then the bytes from
   S3 through the API). Baselines: ``minio.get_object`` of the same object with its SSE-C key, and of
   a clear copy, read to nowhere from the same machine. Rounds alternate; medians; goal
   ours/direct >= 0.9. With encryption off, the ``?via=storage`` redirect is timed too.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from common import CACHE, MB, MiB, Stack, log, machine, minio_client, random_file, write_result


def seed_case(stack: Stack, n_media: int, n_records: int) -> tuple[str, str, str]:
    """Returns (case id, clerk token, id of the media item whose proxy is the big object)."""
    from archive.accounts import services as accounts
    from archive.accounts.models import Device, Officer, Role
    from archive.cases import services as cases
    from archive.cases.models import CaseKind, DocumentKind, Stage

    # Records of the decision stage need a legal review first (issue 12's gate): the stages before it.
    early = [st for st in Stage if st not in (Stage.DECISION, Stage.SERVICE, Stage.EXECUTION)]
    from archive.db import session_scope
    from archive.media.models import ClockSource, Derivative, DerivativeKind, Media, MediaState
    from archive.models import new_id

    engine = stack.engine()
    t0 = datetime(2024, 6, 10, 8, 0, tzinfo=UTC)
    officers = [f"{4000 + i}" for i in range(10)]
    with session_scope(engine) as s:
        clerk, token = accounts.add_user(s, "clerk", Role.RECORDS_MANAGER)
        for b in officers:
            if s.get(Officer, b) is None:
                s.add(Officer(badge=b, name=b))
        s.flush()
        for b in officers:
            s.add(Device(serial=f"BC-{b}", officer_badge=b))
        s.flush()
        media_ids = []
        for i in range(n_media):
            mid, sha = new_id(), f"{i:064x}"
            b = officers[i % len(officers)]
            s.add(
                Media(
                    id=mid,
                    sha256=sha,
                    archived_sha256=sha,
                    size=50 * MB,
                    content_type="video/mp4",
                    file_name=f"clip{i:04d}.mp4",
                    officer_badge=b,
                    device_serial=f"BC-{b}",
                    recorded_at=t0 + timedelta(minutes=3 * i) + timedelta(seconds=i % 7),
                    clock_offset_s=float(i % 7),
                    clock_source=ClockSource.MEASURED,
                    state=MediaState.READY,
                    object_key=f"originals/{mid}",
                    probe={"kind": "video", "duration_s": 150.0},
                )
            )
            s.flush()
            for kind, ext in ((DerivativeKind.PROXY, "mp4"), (DerivativeKind.POSTER, "jpg")):
                s.add(
                    Derivative(
                        media_id=mid,
                        kind=kind,
                        profile="h264-720p",
                        object_key=f"{kind}/{sha}/h264-720p/{sha}.{ext}",
                        sha256=sha,
                        size=256 * MiB if kind is DerivativeKind.PROXY else 40_000,
                        content_type="video/mp4" if kind is DerivativeKind.PROXY else "image/jpeg",
                        method="remux",
                    )
                )
            media_ids.append(mid)
        case = cases.create_case(s, clerk, cases.CaseInput("BENCH-1", "Bench case", CaseKind.CRIMINAL))
    body = "Statement of the witness. " * 40  # ~1 KB, a realistic paragraph
    t_rec = time.monotonic()
    linked = 0
    with session_scope(engine) as s:
        clerk = s.merge(clerk)
        for j in range(n_records):
            start = t0 + timedelta(seconds=36 * j)  # 1,000 records over the same 10 hours as the media
            _, made = cases.add_record(
                s,
                clerk,
                case.id,
                cases.RecordInput(
                    stage=early[j % len(early)],
                    doc_kind=DocumentKind.INQUIRY_TRANSCRIPT,
                    author="4000",
                    occurred_from=start,
                    occurred_to=start + timedelta(seconds=30),
                    body=body,
                    officers=[officers[j % len(officers)]],
                ),
                buffer_s=300.0,
            )
            linked += len(made)
    log(
        f"seeded {n_media} media, {n_records} records ({linked} auto-links) "
        f"in {time.monotonic() - t_rec:.1f} s"
    )
    engine.dispose()
    return case.id, token, media_ids[0]


def timed_timeline(url: str, token: str, case_id: str, runs: int) -> dict[str, Any]:
    import httpx

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
        for _ in range(3):
            c.get(f"/api/v1/cases/{case_id}/timeline").raise_for_status()
        times = []
        size = 0
        items = 0
        for _ in range(runs):
            t = time.perf_counter()
            r = c.get(f"/api/v1/cases/{case_id}/timeline")
            times.append(time.perf_counter() - t)
            r.raise_for_status()
            size = len(r.content)
            items = len(r.json()["items"])
    times.sort()
    return {
        "runs": runs,
        "median_ms": statistics.median(times) * 1000,
        "p95_ms": times[max(0, int(len(times) * 0.95) - 1)] * 1000,
        "max_ms": times[-1] * 1000,
        "items": items,
        "bytes": size,
    }


def stream_ratio(stack: Stack, token: str, media_id: str, rounds: int) -> dict[str, Any]:
    """The proxy streamed through the API against the same object read straight from S3.

    The object is written through the archive's own store, so with encryption at rest on (the
    default) it is an SSE-C object and the API reads it with its key, as in production. Baselines,
    in the same rounds: the minio client reading that object with the same SSE-C key ("direct S3",
    what any reader of that object must pay), and a clear copy of it ("clear S3", storage without
    encryption). With encryption off the review page's ``?via=storage`` redirect is timed too."""
    import urllib3
    from sqlmodel import select

    from archive.db import session_scope
    from archive.media.models import Derivative, DerivativeKind

    size = 256 * MiB
    src = random_file(CACHE / "proxy-256MiB.bin", size, seed=77)
    engine = stack.engine()
    with session_scope(engine) as s:
        d = s.exec(
            select(Derivative).where(Derivative.media_id == media_id, Derivative.kind == DerivativeKind.PROXY)
        ).one()
        key, bucket = d.object_key, stack.env["CUSTODY_BUCKET_DERIVED"]
        d.size = size
    engine.dispose()
    store = stack.store()
    store.put_file(bucket, key, src, "video/mp4")
    ssec = store.keys.sse(store.keys.current, bucket, key) if store.keys else None
    clear_key = key + ".clear"
    mc = minio_client()
    mc.fput_object(bucket, clear_key, str(src), content_type="video/mp4")
    pool = urllib3.PoolManager()

    def read_all(url: str, headers: dict[str, str]) -> int:
        # The same client and chunking as minio's get_object below: the server side is measured.
        r = pool.request("GET", url, headers=headers, preload_content=False, redirect=False)
        try:
            assert r.status == 200, r.status
            return sum(len(chunk) for chunk in r.stream(1 * MiB))
        finally:
            r.release_conn()

    hops: list[float] = []  # the API's part of a via=storage access: check, log, presign, 307
    bytes_only: list[float] = []
    auth = {"Authorization": f"Bearer {token}"}
    import httpx

    probe = httpx.get(f"{stack.url}/api/v1/media/{media_id}/proxy?via=storage", headers=auth)
    redirects = probe.status_code == 307

    def ours(via: str = "api") -> float:
        # via=api: the bytes pass through the API; via=storage (the review page with encryption off):
        # the API logs the access and answers 307 to a presigned S3 URL, which the client then reads.
        t = time.perf_counter()
        target = f"{stack.url}/api/v1/media/{media_id}/proxy?via={via}"
        if via == "storage":
            hop = httpx.get(target, headers=auth)
            assert hop.status_code == 307, hop.status_code
            t_hop = time.perf_counter()
            hops.append(t_hop - t)
            n = read_all(hop.headers["location"], {})
            bytes_only.append(size / (time.perf_counter() - t_hop) / MB)
        else:
            n = read_all(target, auth)
        assert n == size, n
        return size / (time.perf_counter() - t) / MB

    def s3(obj: str, key_for: Any) -> float:
        t = time.perf_counter()
        resp = mc.get_object(bucket, obj, ssec=key_for)
        n = 0
        try:
            for chunk in resp.stream(1 * MiB):
                n += len(chunk)
        finally:
            resp.close()
            resp.release_conn()
        assert n == size, n
        return size / (time.perf_counter() - t) / MB

    a: list[float] = []
    b: list[float] = []
    c: list[float] = []
    p: list[float] = []
    order: list[tuple[Any, list[float]]] = [
        (ours, a),
        (lambda: s3(key, ssec), b),
        (lambda: s3(clear_key, None), c),
    ]
    if redirects:
        order.append((lambda: ours("storage"), p))
    for i in range(rounds):
        for f, out in order if i % 2 == 0 else reversed(order):
            out.append(f())
    mc.remove_object(bucket, clear_key)
    res: dict[str, Any] = {
        "object_bytes": size,
        "rounds": rounds,
        "encrypted": ssec is not None,
        "api_MBps": statistics.median(a),
        "direct_s3_MBps": statistics.median(b),
        "clear_s3_MBps": statistics.median(c),
        "ratio_api_over_s3": statistics.median(a) / statistics.median(b),
        "ratio_api_over_clear_s3": statistics.median(a) / statistics.median(c),
        "api_all": a,
        "s3_all": b,
        "clear_s3_all": c,
    }
    if p:
        res.update(
            presigned_MBps=statistics.median(p),
            ratio_presigned_over_s3=statistics.median(p) / statistics.median(b),
            presigned_hop_ms=statistics.median(hops) * 1000,
            presigned_bytes_MBps=statistics.median(bytes_only),
            presigned_all=p,
        )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--media", type=int, default=200)
    ap.add_argument("--records", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    log(machine())
    with Stack(with_workers=False) as stack:
        case_id, token, media_id = seed_case(stack, args.media, args.records)
        tl = timed_timeline(stack.url, token, case_id, args.runs)
        log(
            f"timeline of {tl['items']} items ({tl['bytes'] / 1e6:.2f} MB JSON): "
            f"median {tl['median_ms']:.0f} ms, "
            f"p95 {tl['p95_ms']:.0f} ms, max {tl['max_ms']:.0f} ms over {tl['runs']} calls"
        )
        st = stream_ratio(stack, token, media_id, args.rounds)
        sealed = "SSE-C" if st["encrypted"] else "clear"
        log(
            f"proxy 256 MiB ({sealed}): API {st['api_MBps']:.0f} MB/s, direct S3 {st['direct_s3_MBps']:.0f}"
            f" MB/s, ratio {st['ratio_api_over_s3']:.2f} (goal >= 0.9); the same bytes stored in clear"
            f" {st['clear_s3_MBps']:.0f} MB/s (API/clear {st['ratio_api_over_clear_s3']:.2f})"
        )
        if "presigned_MBps" in st:
            log(
                f"presigned URL {st['presigned_MBps']:.0f} MB/s, ratio {st['ratio_presigned_over_s3']:.2f};"
                f" of which the API hop {st['presigned_hop_ms']:.0f} ms, then the bytes at"
                f" {st['presigned_bytes_MBps']:.0f} MB/s"
            )
    write_result(
        "timeline_latency",
        {"machine": machine(), "media": args.media, "records": args.records, "timeline": tl, "stream": st},
    )


if __name__ == "__main__":
    main()

"""What encryption at rest (SSE-C) costs on writes and reads, on the real S3 server (Ceph RGW).

Three ways to read the same 256 MB, each timed on a fresh object of the same size:
- clear: a plain object, read with the plain minio client (the cost before encryption);
- sse-c: an SSE-C object read through MinioStore.open_stream (fixity, verify, export, streaming);
- proxy: the SSE-C object read over the loopback URL ffmpeg gets (archive.object_proxy), with
  urllib in 1 MiB reads, plus `ffmpeg -c copy` of a clip through it vs. a clear presigned S3 URL.

Prints MB/s and the ratios to clear. Run:
    eval "$(deploy/services.sh up test)"; .venv/bin/python bench/sse_read.py
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import MB, empty_bucket, minio_client, service_env

SIZE = 256 * 1024 * 1024


def main() -> None:
    env = service_env()
    tag = uuid.uuid4().hex[:8]
    os.environ.update({k: v for k, v in env.items() if k.startswith("CUSTODY_")})
    os.environ["CUSTODY_BUCKET_ORIGINALS"] = f"bench-sse-{tag}-o"
    os.environ["CUSTODY_BUCKET_DERIVED"] = f"bench-sse-{tag}-d"
    os.environ["CUSTODY_DATA_DIR"] = tempfile.mkdtemp(prefix="bench-sse-")
    from archive.config import get_settings
    from archive.storage import MinioStore

    store = MinioStore(get_settings())
    store.ensure_buckets()
    bucket = store.derived  # no Object Lock: the bench can clean up
    raw = minio_client()
    data = os.urandom(SIZE)
    try:
        t = time.perf_counter()
        raw.put_object(bucket, "clear", io.BytesIO(data), SIZE)
        put_clear = SIZE / (time.perf_counter() - t) / MB
        t = time.perf_counter()
        store.put_bytes(bucket, "sealed", data, "application/octet-stream")
        put_sse = SIZE / (time.perf_counter() - t) / MB

        t = time.perf_counter()
        r = raw.get_object(bucket, "clear")
        n = sum(len(c) for c in r.stream(1024 * 1024))
        r.close()
        clear = n / (time.perf_counter() - t) / MB

        t = time.perf_counter()
        with store.open_stream(bucket, "sealed") as chunks:
            n = sum(len(c) for c in chunks)
        sse = n / (time.perf_counter() - t) / MB

        url = store.presigned_get(bucket, "sealed", timedelta(minutes=10))
        t = time.perf_counter()
        n = 0
        with urllib.request.urlopen(url) as resp:  # noqa: S310 - loopback http
            while chunk := resp.read(1024 * 1024):
                n += len(chunk)
        proxy = n / (time.perf_counter() - t) / MB

        # ffmpeg remux (what probe/transcode read) of the same bytes through both URLs
        clip = Path(tempfile.mkdtemp()) / "clip.mp4"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=d=60:s=1280x720:r=30",
             "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M", "-y", str(clip)],
            check=True,
        )  # fmt: skip
        raw.fput_object(bucket, "clip-clear", str(clip))
        store.put_file(bucket, "clip-sealed", clip, "video/mp4")
        timings = {}
        for name, u in (
            (
                "clear presigned S3",
                raw.presigned_get_object(bucket, "clip-clear", expires=timedelta(minutes=10)),
            ),
            ("sse-c loopback proxy", store.presigned_get(bucket, "clip-sealed", timedelta(minutes=10))),
        ):
            t = time.perf_counter()
            subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-i", u, "-c", "copy", "-f", "null", "-"], check=True
            )
            timings[name] = time.perf_counter() - t
    finally:
        empty_bucket(store.originals, remove=True)
        empty_bucket(store.derived, remove=True)

    print(f"256 MB write, clear object, minio client:  {put_clear:8.0f} MB/s")
    ratio = put_sse / put_clear
    print(f"256 MB write, SSE-C, MinioStore.put_bytes: {put_sse:8.0f} MB/s  ({ratio:.2f} x clear)")
    print(f"256 MB read, clear object, minio client:   {clear:8.0f} MB/s")
    print(f"256 MB read, SSE-C, MinioStore.open_stream: {sse:8.0f} MB/s  ({sse / clear:.2f} x clear)")
    print(f"256 MB read, SSE-C, loopback proxy (urllib): {proxy:7.0f} MB/s  ({proxy / clear:.2f} x clear)")
    size_mb = clip.stat().st_size / MB
    for name, secs in timings.items():
        print(
            f"ffmpeg -c copy of a {size_mb:.0f} MB clip via {name}: {secs:.2f} s ({size_mb / secs:.0f} MB/s)"
        )


if __name__ == "__main__":
    main()

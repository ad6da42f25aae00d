"""A loopback HTTP server that streams stored objects, decrypted, to local readers (ffmpeg).

ffprobe and ffmpeg read originals over HTTP with Range requests, so a 4 GB recording is never
copied to local disk. An SSE-C object cannot be read through a plain presigned S3 URL: every request
needs the object's key in its headers. Handing ffmpeg the key (``-headers``) would put it on a
command line every local user can read, so instead each process that asks for a URL runs this small
server on 127.0.0.1 and grants a random, expiring token per object; the server reads the object
through the store (with its key) and answers GET/HEAD with Range like S3 does.

What a local user who reads ffmpeg's command line learns is the same as before encryption: a URL
that reads one object until it expires - and now only from this machine, only while the granting
process lives, and without learning any key.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from archive.errors import ObjectMissing, StorageError

if TYPE_CHECKING:
    from archive.storage import MinioStore

# the name of the query parameter (not a secret); archive.media redacts query strings from messages
TOKEN_PARAM = "X-Custody-Token"  # noqa: S105
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class ObjectProxy:
    """One per process (started lazily by MinioStore.presigned_get, after any fork)."""

    def __init__(self, store: MinioStore) -> None:
        self.store = store
        self._grants: dict[str, tuple[str, str, float]] = {}
        self._lock = threading.Lock()
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="object-proxy", daemon=True)
        self._thread.start()

    def grant(self, bucket: str, key: str, expires: timedelta) -> str:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            # forget expired grants, so a long-lived worker does not accumulate them
            for t in [t for t, (_, _, until) in self._grants.items() if until < now]:
                del self._grants[t]
            self._grants[token] = (bucket, key, now + expires.total_seconds())
        return f"http://127.0.0.1:{self.port}/object?{TOKEN_PARAM}={token}"

    def lookup(self, token: str) -> tuple[str, str] | None:
        with self._lock:
            grant = self._grants.get(token)
        if grant is None or grant[2] < time.monotonic():
            return None
        return grant[0], grant[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    owner: ObjectProxy
    protocol_version = "HTTP/1.1"  # keep-alive: ffmpeg seeks with many range requests
    server_version = "custody-object-proxy"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        """Silent: a request line carries the token."""

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _refuse(self, status: int, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _answer(self, *, send_body: bool) -> None:
        parts = urlsplit(self.path)
        token = (parse_qs(parts.query).get(TOKEN_PARAM) or [""])[0]
        target = self.owner.lookup(token) if parts.path == "/object" and token else None
        if target is None:
            self._refuse(403)
            return
        bucket, key = target
        try:
            size = self.owner.store.stat(bucket, key).size
        except ObjectMissing:
            self._refuse(404)
            return
        except StorageError:
            self._refuse(503)
            return
        status, offset, length = 200, 0, size
        header = self.headers.get("Range")
        if header:
            m = _RANGE.match(header.strip())
            start_s, end_s = (m.group(1), m.group(2)) if m else ("", "")
            if m and start_s:
                offset = int(start_s)
                end = min(int(end_s), size - 1) if end_s else size - 1
                length = end - offset + 1
            elif m and end_s:  # suffix: the last N bytes
                length = min(int(end_s), size)
                offset = size - length
            if not m or offset >= size or length <= 0:
                self._refuse(416, {"Content-Range": f"bytes */{size}"})
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {offset}-{offset + length - 1}/{size}")
        self.end_headers()
        if not send_body or length == 0:
            return
        try:
            with self.owner.store.open_stream(bucket, key, offset=offset, length=length) as chunks:
                for chunk in chunks:
                    self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # ffmpeg seeks by dropping a connection: normal
        except StorageError:
            self.close_connection = True  # mid-body: all we can do is cut the connection

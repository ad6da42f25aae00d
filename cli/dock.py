"""`custody dock`: archive a recorder's folder.

By default the bytes go straight to S3: the dock creates the upload through the API (tus creation,
``sha256=deferred``), asks the API for short-lived presigned URLs, one per part, PUTs several parts
in parallel, and reports each part; the API counts a part only once S3 lists it with that size and
ETag, and the API completes the upload with the SHA-256 the dock computed. ``--via-api`` sends the
bytes through the API's tus endpoint instead (networks where the dock cannot reach S3).

Each file is read once: the bytes are hashed in order as they are read. A file counts as safe only
when the server reports that its hash of what S3 stored matches; only then may ``--clear`` remove it.
An outage of the API or of S3 is ridden out: requests are retried with backoff for ``retry_for_s``
(saying so on screen); acknowledged parts are never sent again.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import urllib3

from archive import i18n, localtime
from archive.i18n import _
from archive.ingest.tus import DEFERRED, encode_metadata

T = TypeVar("T")

TUS = {"Tus-Resumable": "1.0.0"}
READ_BLOCK = 1024 * 1024
PATCH_BYTES = 64 * 1024 * 1024
SAFE_STATES = {"verified", "probed", "derived", "ready", "unplayable", "duplicate"}
SKIP_NAMES = {".DS_Store", "Thumbs.db"}


class DockError(Exception):
    def __init__(self, message: str, status: int | None = None, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body or {}

    @property
    def retryable(self) -> bool:
        # 423: another PATCH holds the upload (or a crashed one's lock has not expired yet);
        # 409: our offset is stale; 5xx: the server or its storage hiccuped.
        return self.status is not None and (self.status in (409, 423) or self.status >= 500)


RETRY_STATUS = {423, 429, 500, 502, 503, 504}


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError | urllib3.exceptions.HTTPError | ConnectionError):
        return True
    return isinstance(exc, DockError) and exc.status is not None and exc.status in RETRY_STATUS


class Backoff:
    """Retries one operation through an outage (API restart, S3 restart, dropped connection) with
    exponential backoff, for up to ``retry_for_s`` from the first failure, saying so on screen."""

    def __init__(self, retry_for_s: float, say: Callable[[str], None]) -> None:
        self.retry_for_s = retry_for_s
        self.say = say

    def run(
        self, what: str, fn: Callable[[], T], retry_on: Callable[[BaseException], bool] = _retryable
    ) -> T:
        first: float | None = None
        delay = 0.5
        while True:
            try:
                result = fn()
            except Exception as exc:
                if not retry_on(exc):
                    raise
                now = time.monotonic()
                if first is None:
                    first = now
                    self.say(
                        _("{what}: {error}; retrying for up to {seconds:.0f} s").format(
                            what=what, error=_short(exc), seconds=self.retry_for_s
                        )
                    )
                elif now - first > self.retry_for_s:
                    raise DockError(
                        _("{what}: still failing after {seconds:.0f} s: {error}").format(
                            what=what, seconds=now - first, error=_short(exc)
                        )
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            if first is not None:
                self.say(
                    _("{what}: reachable again after {seconds:.0f} s").format(
                        what=what, seconds=time.monotonic() - first
                    )
                )
            return result


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "..."


def say_on_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class FileResult:
    rel: str
    ok: bool
    message: str
    sha256: str = ""
    media_id: str = ""
    skipped: bool = False


@dataclass
class ResumeState:
    """Where each file's upload stands, kept outside the recorder (its files are evidence)."""

    path: Path
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ResumeState:
        try:
            return cls(path, json.loads(path.read_text()))
        except (FileNotFoundError, ValueError):
            return cls(path)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries, indent=1, sort_keys=True))
        tmp.replace(self.path)


def default_state_file(folder: Path, server: str) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "custody"
    tag = hashlib.sha256(f"{server}\0{folder.resolve()}".encode()).hexdigest()[:16]
    return base / f"dock-{tag}.json"


def walk(folder: Path) -> Iterator[tuple[Path, str]]:
    """Regular files below ``folder``, in a stable order; links are not followed out of it."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            p = Path(root) / name
            if name in SKIP_NAMES or name.startswith("._") or p.is_symlink() or not p.is_file():
                continue
            yield p, p.relative_to(folder).as_posix()


def measure_clock_offset(device_clock: str, now: datetime) -> float:
    """Recorder clock minus true time, from the time the recorder shows (read off its display or
    settings menu by the officer at docking) and this station's clock, which is NTP-synchronised.

    Recorders show local time without a zone, so a time without an offset is read in the agency's
    zone (``CUSTODY_TIMEZONE``, Asia/Shanghai unless set; not the station's system zone, which is
    often UTC on a managed machine). ``2024-06-10 22:03:05``, ``2024年6月10日 22:03:05`` and ISO 8601
    with an offset are all accepted. Good to about a second: the officer's reading is the limit,
    not the arithmetic.
    """
    try:
        shown = localtime.parse_local(device_clock)
    except ValueError as exc:
        raise DockError(
            _("--device-clock: {value} is not a time (for example 2024-06-10 22:03:05)").format(
                value=repr(device_clock[:64])
            )
        ) from exc
    return round((shown - now).total_seconds(), 3)


def _fingerprint(p: Path) -> dict[str, int]:
    st = p.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


class Docker:
    def __init__(
        self,
        server: str,
        token: str,
        officer: str,
        device: str,
        *,
        clock_offset_s: float | None = None,
        clock_source: str | None = None,
        state: ResumeState,
        verify_timeout_s: float = 600.0,
        progress: Callable[[str, int, int], None] | None = None,
        direct: bool = True,
        parallel: int = 4,
        retry_for_s: float = 300.0,
        say: Callable[[str], None] = say_on_stderr,
    ) -> None:
        self.server = server.rstrip("/")
        self.direct = direct
        self.parallel = max(1, parallel)
        self.backoff = Backoff(retry_for_s, say)
        self.say = say
        # Bytes PUT to S3 (direct) or sent in PATCH bodies (tus) by this run, for the summary line.
        self.sent_bytes = 0
        self.client = httpx.Client(
            base_url=self.server,
            # The server answers errors in the officer's language too.
            headers={"Authorization": f"Bearer {token}", "Accept-Language": i18n.current_language()},
            timeout=httpx.Timeout(300, connect=10),
        )
        # Straight to S3 on presigned URLs: no bearer token on these requests. urllib3 hands the part
        # to sendall() in one piece (httpcore re-slices a bytes body after every partial send, copying
        # the rest of a 16 MiB part each time).
        self.s3 = urllib3.PoolManager(
            maxsize=max(1, parallel) + 2,
            timeout=urllib3.Timeout(connect=10, read=300),
            retries=False,
        )
        self.officer = officer
        self.device = device
        self.clock_offset_s = clock_offset_s
        # "measured" (--device-clock), "stated" (--clock-offset) or "assumed" (neither: zero).
        self.clock_source = clock_source or ("stated" if clock_offset_s is not None else "assumed")
        self.state = state
        self.verify_timeout_s = verify_timeout_s
        self.progress = progress or (lambda rel, done, total: None)

    def check_token(self) -> dict[str, Any]:
        """Fail fast, once, on a wrong token or an unreachable server, before touching any file."""
        return dict(
            self._check(
                self.client.get("/api/v1/me"),
                _("checking the token with {server}").format(server=self.server),
            ).json()
        )

    def close(self) -> None:
        self.client.close()
        self.s3.clear()

    def _api(self, method: str, url: str, what: str, **kw: Any) -> httpx.Response:
        """One API request, retried through an API restart or a dropped connection."""
        return self.backoff.run(
            _("API ({what})").format(what=what),
            lambda: self._check(self.client.request(method, url, **kw), what),
        )

    def _check(self, resp: httpx.Response, what: str) -> httpx.Response:
        if resp.status_code >= 400:
            body: dict[str, Any] = {}
            try:
                body = dict(resp.json())
                detail = body.get("detail", resp.text)
            except ValueError:
                detail = resp.text
            raise DockError(
                _("{what}: HTTP {status_code}: {detail}").format(
                    what=what, status_code=resp.status_code, detail=detail
                ),
                resp.status_code,
                body,
            )
        return resp

    def _create(self, p: Path, rel: str, size: int) -> tuple[str, int]:
        mtime = datetime.fromtimestamp(p.stat().st_mtime, UTC)
        meta = {
            "filename": p.name,
            "path": rel,
            "officer": self.officer,
            "device": self.device,
            "sha256": DEFERRED,
            "recorded_at": mtime.isoformat(),
            "clock_offset_s": str(self.clock_offset_s or 0.0),
            "clock_source": self.clock_source,
        }
        resp = self._check(
            self.client.post(
                "/api/v1/uploads",
                headers={**TUS, "Upload-Length": str(size), "Upload-Metadata": encode_metadata(meta)},
            ),
            _("creating the upload"),
        )
        url = resp.headers["location"]
        return url, int(resp.headers.get("custody-part-size", 16 * 1024 * 1024))

    def _known(self, url: str) -> int | None:
        """The upload's offset, or None if the server no longer knows it (riding out an outage)."""
        return self.backoff.run(_("API (reading upload offset)"), lambda: self._offset(url))

    def _offset(self, url: str) -> int | None:
        resp = self.client.head(url, headers=TUS)
        if resp.status_code in (404, 410):
            return None
        self._check(resp, _("reading the upload offset"))
        return int(resp.headers["upload-offset"])

    def _patch(
        self, url: str, offset: int, body: bytes | Iterator[bytes], length: int, sha: str | None
    ) -> int:
        headers = {
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            "Content-Length": str(length),
        }
        if sha:
            headers["Custody-Sha256"] = sha
        self.sent_bytes += length
        resp = self._check(self.client.patch(url, content=body, headers=headers), _("sending bytes"))
        return int(resp.headers["upload-offset"])

    def _send(self, p: Path, rel: str, url: str, part: int, start: int, size: int) -> str:
        """Send bytes [start, size) and return the SHA-256 of the whole file, reading each byte once
        (bytes before ``start``, already on the server, are read only to be hashed)."""
        h = hashlib.sha256()
        # The last PATCH carries the final (partial) part, read ahead so its digest can ride along.
        final_start = ((size - 1) // part) * part
        with p.open("rb") as fh:
            pos = 0
            while pos < min(start, final_start):
                block = fh.read(min(READ_BLOCK, min(start, final_start) - pos))
                if not block:
                    raise DockError(_("{file}: file shrank while reading").format(file=rel))
                h.update(block)
                pos += len(block)
            offset = start
            while offset < final_start:
                end = min(offset + PATCH_BYTES, final_start)

                def body(a: int = offset, b: int = end) -> Iterator[bytes]:
                    n = a
                    while n < b:
                        block = fh.read(min(READ_BLOCK, b - n))
                        if not block:
                            raise DockError(_("{file}: file shrank while uploading").format(file=rel))
                        h.update(block)
                        n += len(block)
                        yield block

                offset = self._patch(url, offset, body(), end - offset, None)
                self.progress(rel, offset, size)
            fh.seek(final_start)
            last = fh.read(size - final_start)
            if len(last) != size - final_start:
                raise DockError(_("{file}: file shrank while uploading").format(file=rel))
            h.update(last)
            if fh.read(1):
                raise DockError(_("{file}: file grew while uploading").format(file=rel))
            sha = h.hexdigest()
            # After an interruption the server may already hold the start of the last part.
            send_from = max(offset, final_start)
            rest = last[send_from - final_start :]
            offset = self._patch(url, send_from, rest, len(rest), sha)
            self.progress(rel, offset, size)
        if offset != size:
            raise DockError(
                _("{file}: server stopped at byte {offset} of {size}").format(
                    file=rel, offset=offset, size=size
                )
            )
        return sha

    def _wait_verified(self, url: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.verify_timeout_s
        delay = 0.2
        while True:
            st = self._api("GET", url, _("reading the verification status")).json()
            state = st.get("media_state")
            if state in SAFE_STATES or state == "quarantined":
                return dict(st)
            if time.monotonic() > deadline:
                raise DockError(
                    _("server has not verified the hash after {seconds} s (state {state})").format(
                        seconds=f"{self.verify_timeout_s:.0f}", state=state
                    )
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def _send_resuming(self, p: Path, rel: str, url: str, part: int, start: int, size: int) -> str:
        """Send the file from ``start``; after a dropped connection or a busy upload, ask the
        server where it stands and go on from there (the hash is recomputed from byte 0)."""
        for attempt in range(self.RETRIES + 1):
            try:
                return self._send(p, rel, url, part, start, size)
            except (DockError, httpx.TransportError) as exc:
                retryable = isinstance(exc, httpx.TransportError) or exc.retryable
                if not retryable or attempt == self.RETRIES:
                    raise
                time.sleep(min(2.0 * 2**attempt, 30.0))
                got = self._offset(url)
                if got is None:
                    raise DockError(
                        _("{file}: the server no longer knows this upload").format(file=rel)
                    ) from exc
                start = got
        raise AssertionError("unreachable")

    RETRIES = 6  # with backoff 2, 4, 8, 16, 30, 30 s: rides out an API restart and its upload locks

    def send_file(self, p: Path, rel: str) -> FileResult | Pending:
        """Upload one file (or learn that this station archived it before). The server's
        verification is awaited separately, so the next file uploads while this one is checked."""
        fp = _fingerprint(p)
        size = fp["size"]
        if size == 0:
            return FileResult(rel, False, _("empty file (0 bytes): nothing to archive; left on the recorder"))
        entry = self.state.entries.get(rel)
        if entry and {k: entry.get(k) for k in fp} != fp:
            entry = None  # the file changed since we last saw it: start again
        if entry and entry.get("safe"):
            return FileResult(
                rel,
                True,
                _("already archived (verified in an earlier docking)"),
                entry.get("sha256", ""),
                entry.get("media_id", ""),
                skipped=True,
            )
        url, part, start = None, 16 * 1024 * 1024, 0
        if entry and entry.get("url"):
            url, part = entry["url"], int(entry.get("part", part))
            got = self._known(url)
            if got is None:
                url = None
            else:
                start = got
        if url is None:
            url, part = self.backoff.run(_("API (creating upload)"), lambda: self._create(p, rel, size))
            self.state.entries[rel] = {**fp, "url": url, "part": part}
            self.state.save()
        if self.direct:
            sha = DirectSender(self, p, rel, url, size).run()
        elif start >= size:
            sha = ""  # every byte is on the server already (completed earlier); just learn the result
        else:
            sha = self._send_resuming(p, rel, url, part, start, size)
        return Pending(rel, url, part, sha, fp)

    def confirm(self, pending: Pending) -> FileResult:
        """Wait until the server has hashed what it stored; only then is the file safe."""
        st = self._wait_verified(pending.url)
        media_id = st.get("media_id") or ""
        rel, sha = pending.rel, pending.sha256
        if st.get("media_state") == "quarantined":
            return FileResult(
                rel,
                False,
                _("QUARANTINED by the server: {reason}").format(reason=st.get("media_reason")),
                sha,
                media_id,
            )
        note = (
            _("duplicate of archived {media}").format(media=st.get("duplicate_of"))
            if st.get("media_state") == "duplicate"
            else _("verified")
        )
        self.state.entries[rel] = {
            **pending.fingerprint,
            "url": pending.url,
            "part": pending.part,
            "safe": True,
            "sha256": sha,
            "media_id": media_id,
        }
        self.state.save()
        return FileResult(rel, True, note, sha, media_id)


@dataclass(frozen=True)
class Pending:
    """A file whose bytes are all on the server, awaiting the server's hash check."""

    rel: str
    url: str
    part: int
    sha256: str
    fingerprint: dict[str, int]


def print_progress(rel: str, done: int, total: int) -> None:
    if sys.stderr.isatty():
        print(
            "\r  "
            + _("{file}: {percent} of {total} bytes").format(
                file=rel, percent=f"{done * 100 // max(total, 1):3d}%", total=total
            ),
            end="",
            file=sys.stderr,
            flush=True,
        )
        if done >= total:
            print(file=sys.stderr)


URL_BATCH = 32  # presigned URLs asked for per request (the API's CPU per GB is mostly requests)
REPORT_BATCH = 16  # parts reported per request at most
REPORT_WAIT_S = 0.5  # how long a finished part may wait for others to share its report
URL_MARGIN_S = 60.0  # a URL closer than this to its expiry is not used for a new PUT


class _Stop(Exception):
    """Another thread failed: this one stops quietly."""


class DirectSender:
    """One file, straight to S3: a reader thread reads the parts in order and hashes them, ``parallel``
    threads PUT the parts the archive has not acknowledged, and the calling thread reports finished
    parts in batches and completes the upload. Memory: about (parallel + 2) parts."""

    def __init__(self, docker: Docker, p: Path, rel: str, url: str, size: int, rounds: int = 0) -> None:
        self.rounds = rounds
        self.d = docker
        self.p = p
        self.rel = rel
        self.url = url
        self.size = size
        self.stop = threading.Event()
        self.work: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=1)
        self.results: queue.Queue[tuple[int, int, str] | BaseException] = queue.Queue()
        self.url_lock = threading.Lock()
        self.urls: dict[int, tuple[str, float]] = {}
        # Headers the presign answer asks every part PUT to carry (SSE-C: this object's key).
        self.put_headers: dict[str, str] = {}
        self.todo: list[int] = []
        self.asked: set[int] = set()
        self.digest = ""

    # -- threads ----------------------------------------------------------------------------------

    def _read(self, part_size: int, count: int, send: set[int]) -> None:
        h = hashlib.sha256()
        try:
            with self.p.open("rb") as fh:
                fd = fh.fileno()
                for n in range(1, count + 1):
                    want = part_size if n < count else self.size - (count - 1) * part_size
                    data = os.pread(fd, want, (n - 1) * part_size)
                    if len(data) != want:
                        raise DockError(_("{rel}: file shrank while uploading").format(rel=self.rel))
                    h.update(data)
                    if n in send:
                        self._put_work((n, data))
                    del data
                if os.pread(fd, 1, self.size):
                    raise DockError(_("{rel}: file grew while uploading").format(rel=self.rel))
            self.digest = h.hexdigest()
        except _Stop:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the reporting thread
            self.results.put(exc)
        finally:
            for _i in range(self.d.parallel):
                with_timeout_put(self.work, None, self.stop)

    def _put_work(self, item: tuple[int, bytes]) -> None:
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                self.work.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _url_for(self, n: int) -> str:
        with self.url_lock:
            got = self.urls.pop(n, None)
            if got is not None and got[1] - time.monotonic() > URL_MARGIN_S:
                return got[0]
            batch = [n, *[m for m in self.todo if m > n and m not in self.asked][: URL_BATCH - 1]]
            resp = self.d._api(
                "POST", f"{self.url}/parts/urls", _("asking for part URLs"), json={"parts": batch}
            )
            body = resp.json()
            self.put_headers = {str(k): str(v) for k, v in (body.get("headers") or {}).items()}
            ttl = (datetime.fromisoformat(body["expires_at"]) - datetime.now(UTC)).total_seconds()
            until = time.monotonic() + ttl
            for g in body["parts"]:
                self.urls[int(g["number"])] = (str(g["url"]), until)
                self.asked.add(int(g["number"]))
            return self.urls.pop(n)[0]

    def _put_once(self, n: int, data: bytes, fresh_url: bool) -> str:
        if fresh_url:
            with self.url_lock:
                self.urls.pop(n, None)
        url = self._url_for(n)
        with self.url_lock:
            headers = {**self.put_headers, "Content-Length": str(len(data))}
        r = self.d.s3.request("PUT", url, body=data, headers=headers, preload_content=True)
        status = int(r.status)
        if status == 200:
            etag = str(r.headers.get("etag", "")).strip('"')
            if not etag:
                raise DockError(_("storage answered part {n} without an ETag").format(n=n))
            return etag
        text = r.data[:300].decode("utf-8", "replace")
        if status == 403:
            raise _UrlRefused(text)
        if status == 404:
            raise DockError(
                _("storage no longer knows this upload (part {n}): {text}").format(n=n, text=text)
            )
        raise DockError(
            _("storage refused part {n}: HTTP {status}: {text}").format(n=n, status=status, text=text),
            status,
        )

    def _put(self, n: int, data: bytes) -> str:
        # A URL that expired (a long outage) is replaced once; a second refusal is real.
        try:
            return self.d.backoff.run(
                _("storage (part {n})").format(n=n), lambda: self._put_once(n, data, False)
            )
        except _UrlRefused:
            return self.d.backoff.run(
                _("storage (part {n})").format(n=n), lambda: self._put_once(n, data, True)
            )

    def _upload(self) -> None:
        try:
            while not self.stop.is_set():
                item = self.work.get()
                if item is None:
                    return
                n, data = item
                etag = self._put(n, data)
                with self.url_lock:
                    self.d.sent_bytes += len(data)
                self.results.put((n, len(data), etag))
                del item, data
        except BaseException as exc:  # noqa: BLE001 - handed to the reporting thread
            self.results.put(exc)

    # -- the calling thread -----------------------------------------------------------------------

    def _report(self, done: list[tuple[int, int, str]]) -> dict[str, Any]:
        body = {"parts": [{"number": n, "size": size, "etag": etag} for n, size, etag in done]}
        return dict(self.d._api("POST", f"{self.url}/parts", _("reporting parts"), json=body).json())

    def run(self) -> str:
        prog = self.d._api("GET", f"{self.url}/parts", _("reading acknowledged parts")).json()
        part_size, count = int(prog["part_size"]), int(prog["part_count"])
        acked = {int(x["number"]) for x in prog["parts"]}
        acked_bytes = int(prog["acknowledged_bytes"])
        self.todo = [n for n in range(1, count + 1) if n not in acked]
        if prog["state"] == "complete":
            self.todo = []
        threads = [threading.Thread(target=self._read, args=(part_size, count, set(self.todo)), daemon=True)]
        threads += [threading.Thread(target=self._upload, daemon=True) for _i in range(self.d.parallel)]
        for t in threads:
            t.start()
        remaining = set(self.todo)
        self.d.progress(self.rel, acked_bytes, self.size)
        try:
            while remaining:
                # Report in batches (the API's CPU per GB is mostly requests): what finished within
                # REPORT_WAIT_S of the first unreported part, up to REPORT_BATCH parts.
                done: list[tuple[int, int, str]] = []
                got = self.results.get()
                until = time.monotonic() + REPORT_WAIT_S
                while True:
                    if isinstance(got, BaseException):
                        raise got
                    done.append(got)
                    if len(done) >= REPORT_BATCH or len(done) == len(remaining):
                        break
                    try:
                        got = self.results.get(timeout=max(0.0, until - time.monotonic()))
                    except queue.Empty:
                        break
                state = self._report(done)
                remaining -= {n for n, _s, _e in done}
                self.d.progress(self.rel, int(state["acknowledged_bytes"]), self.size)
            threads[0].join()
            while not self.results.empty():  # the reader's own failure (file changed)
                got = self.results.get()
                if isinstance(got, BaseException):
                    raise got
        finally:
            self.stop.set()
            for t in threads:
                t.join(timeout=30)
        if prog["state"] == "complete":
            return self.digest
        if not self.digest:
            raise DockError(_("{rel}: the file could not be read to the end").format(rel=self.rel))
        try:
            self.d._api("POST", f"{self.url}/complete", _("completing upload"), json={"sha256": self.digest})
        except DockError as exc:
            # Parts that storage holds other than as reported are un-acknowledged: send them again.
            if exc.status != 409 or "resend" not in exc.body or self.rounds >= 3:
                raise
            self.d.say(_("{rel}: sending {n} part(s) again").format(rel=self.rel, n=len(exc.body["resend"])))
            return DirectSender(self.d, self.p, self.rel, self.url, self.size, self.rounds + 1).run()
        return self.digest


class _UrlRefused(Exception):
    pass


def with_timeout_put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    """Put, unless the consumers are gone (``stop``)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.5)
            return
        except queue.Full:
            continue

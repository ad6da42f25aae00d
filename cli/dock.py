"""`custody dock`: archive a recorder's folder through the tus API.

Each file is read once: the bytes are hashed as they are sent. The SHA-256 is declared on the
final PATCH (``sha256=deferred`` in the metadata, ``Custody-Sha256`` on the last request), so
the server can compare it with its own hash of what it stored. A file counts as safe only when
the server reports that its hash was verified; only then may ``--clear`` remove it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from archive import i18n, localtime
from archive.i18n import _
from archive.ingest.tus import DEFERRED, encode_metadata

TUS = {"Tus-Resumable": "1.0.0"}
READ_BLOCK = 1024 * 1024
PATCH_BYTES = 64 * 1024 * 1024
SAFE_STATES = {"verified", "probed", "derived", "ready", "unplayable", "duplicate"}
SKIP_NAMES = {".DS_Store", "Thumbs.db"}


class DockError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        # 423: another PATCH holds the upload (or a crashed one's lock has not expired yet);
        # 409: our offset is stale; 5xx: the server or its storage hiccuped.
        return self.status is not None and (self.status in (409, 423) or self.status >= 500)


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
    ) -> None:
        self.server = server.rstrip("/")
        self.client = httpx.Client(
            base_url=self.server,
            # The server answers errors in the officer's language too.
            headers={"Authorization": f"Bearer {token}", "Accept-Language": i18n.current_language()},
            timeout=httpx.Timeout(300, connect=10),
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

    def _check(self, resp: httpx.Response, what: str) -> httpx.Response:
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            raise DockError(
                _("{what}: HTTP {status_code}: {detail}").format(
                    what=what, status_code=resp.status_code, detail=detail
                ),
                resp.status_code,
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
            st = self._check(self.client.get(url), _("reading the verification status")).json()
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
            got = self._offset(url)
            if got is None:
                url = None
            else:
                start = got
        if url is None:
            url, part = self._create(p, rel, size)
            self.state.entries[rel] = {**fp, "url": url, "part": part}
            self.state.save()
        if start >= size:
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

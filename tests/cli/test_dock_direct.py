"""Direct uploads: `custody dock` PUTs parts straight to S3 (real Ceph RGW behind a counting TCP
proxy that plays the docks' S3 endpoint), the API grants URLs, checks each part against S3 and
completes. Resume and outages are judged by the bytes the dock sent, never by time."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.config import get_settings
from archive.ingest.models import Upload
from archive.ingest.tus import encode_metadata
from archive.media.models import Media
from archive.models import Event
from archive.storage import MinioStore
from migrations import migrate
from tests.conftest import PART, ROOT, LiveAPI, free_port
from tests.tcp_proxy import CountingProxy
from tests.test_e2e import dock as run_dock
from tests.test_e2e import dock_cmd

HEADERS_PER_PART = 4096  # generous bound on one PUT's request line and headers


@pytest.fixture
def proxy(env: dict[str, str]) -> Iterator[CountingProxy]:
    p = CountingProxy(env["CUSTODY_S3_ENDPOINT"]).start()
    yield p
    p.stop()


@pytest.fixture
def api(env: dict[str, str], proxy: CountingProxy, tmp_path: Path) -> Iterator[LiveAPI]:
    """The API, signing part URLs for the proxy (the docks' endpoint); workers use S3 directly."""
    port = free_port()
    a = LiveAPI(
        f"http://127.0.0.1:{port}", port, {**env, "CUSTODY_S3_PUBLIC_ENDPOINT": proxy.endpoint}, tmp_path
    )
    migrate(get_settings())
    a.start()
    yield a
    a.stop()


def noise(path: Path, size: int, seed: int) -> Path:
    with path.open("wb") as fh:
        left, i = size, 0
        while left:
            block = hashlib.shake_256(seed.to_bytes(4, "big") + i.to_bytes(4, "big")).digest(
                min(left, 1 << 20)
            )
            fh.write(block)
            left -= len(block)
            i += 1
    return path


def start_dock(
    api: LiveAPI, token: str, folder: Path, state: Path, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(
            dock_cmd(api, folder, state, *extra),
            env={**os.environ, "CUSTODY_TOKEN": token},
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )


def acknowledged(engine: Engine) -> tuple[int, set[int]]:
    with Session(engine) as s:
        up = s.exec(select(Upload)).first()
    if up is None:
        return 0, set()
    return sum(int(p["size"]) for p in up.parts), {int(p["n"]) for p in up.parts}


def wait_acknowledged(engine: Engine, proc: subprocess.Popen[bytes], parts: int, log: Path) -> None:
    deadline = time.monotonic() + 120
    while len(acknowledged(engine)[1]) < parts:
        assert proc.poll() is None, "dock ended before it could be interrupted:\n" + log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.02)


def test_dock_puts_parts_straight_to_storage(
    api: LiveAPI,
    proxy: CountingProxy,
    serve_workers: Any,
    make_user: Any,
    store: MinioStore,
    engine: Engine,
    tmp_path: Path,
) -> None:
    officer = make_user("0815", "officer")
    rec = tmp_path / "rec"
    rec.mkdir()
    big = noise(rec / "a.mp4", 4 * PART + 3 * 1024 * 1024 + 17, seed=1)  # 5 parts, the last short
    small = noise(rec / "b.wav", 1000, seed=2)  # one part
    out = run_dock(api, officer, rec, tmp_path / "state.json", "--parallel", "3")
    assert out.returncode == 0, out.stdout + out.stderr
    total = big.stat().st_size + small.stat().st_size
    # Every byte went to the storage endpoint once, and only the bytes (plus request headers).
    assert total <= proxy.sent <= total + 6 * HEADERS_PER_PART
    with Session(engine) as s:
        media = {m.file_name: m for m in s.exec(select(Media))}
        receives = s.exec(select(Event).where(Event.action == "media.receive")).all()
        verifies = s.exec(select(Event).where(Event.action == "media.verify")).all()
    assert len(receives) == 2
    # Each stored object is made of exactly the parts the archive acknowledged (multipart ETag).
    assert [e.details["parts_as_acknowledged"] for e in verifies] == [True, True]
    for f in (big, small):
        sha = hashlib.sha256(f.read_bytes()).hexdigest()
        assert f"SAFE  {f.name}  {sha}" in out.stdout
        m = media[f.name]
        assert m.archived_sha256 == sha
        assert store.read_bytes(store.originals, m.object_key) == f.read_bytes()
    assert f"sent {total} bytes" in out.stderr
    # The production worker layout (ingest on threads, transcode prefork) takes both to the end.
    deadline = time.monotonic() + 180
    while True:
        with Session(engine) as s:
            states = {m.state.value for m in s.exec(select(Media))}
        if states == {"unplayable"}:
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.5)


def _create(api: LiveAPI, token: str, size: int) -> str:
    meta = {"filename": "x.mp4", "officer": "0815", "device": "BC-1", "sha256": "deferred"}
    r = httpx.post(
        f"{api.url}/api/v1/uploads",
        headers={
            "Authorization": f"Bearer {token}",
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(size),
            "Upload-Metadata": encode_metadata(meta),
        },
    )
    assert r.status_code == 201, r.text
    return f"{api.url}{r.headers['location']}"


def test_parts_count_only_as_storage_lists_them(
    api: LiveAPI, proxy: CountingProxy, make_user: Any, engine: Engine, tmp_path: Path
) -> None:
    officer = make_user("0815", "officer")
    other = make_user("0816", "officer")
    admin = make_user("boss", "admin")
    auditor = make_user("aud", "auditor")
    reviewer = make_user("rev", "reviewer")
    data = noise(tmp_path / "f", PART + 1234, seed=3).read_bytes()
    url = _create(api, officer, len(data))
    auth = {"Authorization": f"Bearer {officer}"}

    r = httpx.post(f"{url}/parts/urls", json={"parts": [1, 2]}, headers=auth)
    assert r.status_code == 200, r.text
    grants = {g["number"]: g for g in r.json()["parts"]}
    assert grants[1]["size"] == PART and grants[2]["size"] == 1234
    # Encryption at rest (SSE-C): the answer carries this object's key, which every PUT must send.
    sse = r.json()["headers"]
    assert set(sse) == {
        "X-Amz-Server-Side-Encryption-Customer-Algorithm",
        "X-Amz-Server-Side-Encryption-Customer-Key",
        "X-Amz-Server-Side-Encryption-Customer-Key-MD5",
    }
    assert httpx.put(grants[1]["url"], content=data[:PART]).status_code == 400  # without the key
    assert urlparse(grants[1]["url"]).netloc == proxy.endpoint  # the docks' endpoint, not the workers'
    # The URL is for that part only: another part number breaks its signature.
    u = urlparse(grants[1]["url"])
    q = {k: v[0] for k, v in parse_qs(u.query).items()}
    forged = urlunparse(u._replace(query=urlencode({**q, "partNumber": "2"})))
    assert httpx.put(forged, content=data[PART:]).status_code == 403

    put = httpx.put(grants[1]["url"], content=data[:PART], headers=sse)
    assert put.status_code == 200
    etag = put.headers["etag"].strip('"')
    # Not counted unless storage holds exactly what is reported.
    bad = [
        ({"number": 1, "size": PART, "etag": "0" * 32}, 409),  # other ETag
        ({"number": 1, "size": PART - 1, "etag": etag}, 400),  # not the part's size
        ({"number": 2, "size": 1234, "etag": etag}, 409),  # never uploaded
        ({"number": 3, "size": 1, "etag": etag}, 400),  # no such part
    ]
    for part, status in bad:
        r = httpx.post(f"{url}/parts", json={"parts": [part]}, headers=auth)
        assert r.status_code == status, (part, r.text)
    assert acknowledged(engine) == (0, set())
    r = httpx.post(f"{url}/complete", json={"sha256": hashlib.sha256(data).hexdigest()}, headers=auth)
    assert r.status_code == 409 and "1, 2" in r.json()["detail"]

    r = httpx.post(f"{url}/parts", json={"parts": [{"number": 1, "size": PART, "etag": etag}]}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["offset"] == PART and r.json()["acknowledged_bytes"] == PART
    # A tus HEAD sees the same offset.
    head = httpx.head(url, headers={**auth, "Tus-Resumable": "1.0.0"})
    assert head.headers["upload-offset"] == str(PART)

    # Who may: the owner and an admin; not another officer (not found), auditors or reviewers.
    for token, status in ((other, 404), (auditor, 403), (reviewer, 403), (admin, 200)):
        r = httpx.post(f"{url}/parts/urls", json={"parts": [2]}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == status, (token, r.text)
        r = httpx.get(f"{url}/parts", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == status, r.text
    assert httpx.post(f"{url}/parts/urls", json={"parts": [2]}).status_code == 401

    grant = httpx.post(f"{url}/parts/urls", json={"parts": [2]}, headers=auth).json()["parts"][0]
    put = httpx.put(grant["url"], content=data[PART:], headers=sse)
    assert put.status_code == 200
    r = httpx.post(
        f"{url}/parts",
        json={"parts": [{"number": 2, "size": 1234, "etag": put.headers["etag"]}]},
        headers=auth,
    )
    assert r.status_code == 200 and r.json()["offset"] == len(data)
    sha = hashlib.sha256(data).hexdigest()

    # Part 2 replaced after it was reported (same number, other bytes): completion does not take it,
    # un-acknowledges it, and asks for it again.
    def put_part_2(body: bytes) -> str:
        g = httpx.post(f"{url}/parts/urls", json={"parts": [2]}, headers=auth).json()["parts"][0]
        resp = httpx.put(g["url"], content=body, headers=sse)
        assert resp.status_code == 200
        return str(resp.headers["etag"])

    put_part_2(b"y" * 1234)
    r = httpx.post(f"{url}/complete", json={"sha256": sha}, headers=auth)
    assert r.status_code == 409 and r.json()["resend"] == [2], r.text
    assert [p["number"] for p in httpx.get(f"{url}/parts", headers=auth).json()["parts"]] == [1]
    etag2 = put_part_2(data[PART:])
    r = httpx.post(f"{url}/parts", json={"parts": [{"number": 2, "size": 1234, "etag": etag2}]}, headers=auth)
    assert r.status_code == 200
    first = httpx.post(f"{url}/complete", json={"sha256": sha}, headers=auth)
    assert first.status_code == 200, first.text
    again = httpx.post(f"{url}/complete", json={"sha256": sha}, headers=auth)
    assert again.status_code == 200 and again.json()["media_id"] == first.json()["media_id"]
    with Session(engine) as s:
        m = s.get(Media, first.json()["media_id"])
        assert m is not None and m.sha256 == sha and m.size == len(data)
    # A completed upload grants no more URLs.
    assert httpx.post(f"{url}/parts/urls", json={"parts": [1]}, headers=auth).status_code == 409


def test_dock_restart_resends_only_unacknowledged_parts(
    api: LiveAPI, proxy: CountingProxy, worker: Any, make_user: Any, engine: Engine, tmp_path: Path
) -> None:
    officer = make_user("0815", "officer")
    rec = tmp_path / "rec"
    rec.mkdir()
    f = noise(rec / "long.mp4", 12 * PART + 999, seed=4)
    size = f.stat().st_size
    proxy.rate = 25e6  # slow enough to interrupt in the middle
    log = tmp_path / "dock1.log"
    proc = start_dock(api, officer, rec, tmp_path / "state.json", log, "--parallel", "2")
    wait_acknowledged(engine, proc, 3, log)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proxy.drain()
    # A report the dock sent just before it died may still be committing: let the count settle.
    acked_bytes, last = -1, acknowledged(engine)[0]
    while acked_bytes != last:
        time.sleep(1)
        acked_bytes, last = last, acknowledged(engine)[0]
    assert 0 < acked_bytes < size
    proxy.rate = None
    proxy.sent = 0
    out = run_dock(api, officer, rec, tmp_path / "state.json")
    assert out.returncode == 0, out.stdout + out.stderr
    missing = size - acked_bytes
    assert missing <= proxy.sent <= missing + 13 * HEADERS_PER_PART  # nothing acknowledged re-sent
    assert f"sent {missing} bytes" in out.stderr
    with Session(engine) as s:
        ups = s.exec(select(Upload)).all()
    assert len(ups) == 1 and ups[0].state == "complete"  # the same upload, resumed
    assert hashlib.sha256(f.read_bytes()).hexdigest() in out.stdout


def test_dock_rides_out_an_api_restart(
    api: LiveAPI, proxy: CountingProxy, worker: Any, make_user: Any, engine: Engine, tmp_path: Path
) -> None:
    officer = make_user("0815", "officer")
    rec = tmp_path / "rec"
    rec.mkdir()
    f = noise(rec / "long.mp4", 12 * PART + 5, seed=5)
    size = f.stat().st_size
    proxy.rate = 25e6
    log = tmp_path / "dock.log"
    proc = start_dock(
        api, officer, rec, tmp_path / "state.json", log, "--parallel", "2", "--retry-for", "120"
    )
    wait_acknowledged(engine, proc, 2, log)
    api.stop(sig_kill=True)
    before = acknowledged(engine)[1]
    time.sleep(2)  # the dock meets a refused connection
    api.start()
    proxy.rate = None
    assert proc.wait(300) == 0, log.read_text()
    text = log.read_text()
    assert "retrying for up to 120 s" in text and "reachable again" in text
    # Nothing acknowledged before the kill was lost, and no part went to storage twice.
    assert before <= acknowledged(engine)[1]
    assert size <= proxy.sent <= size + 13 * HEADERS_PER_PART
    assert f"SAFE  long.mp4  {hashlib.sha256(f.read_bytes()).hexdigest()}" in text


def test_dock_rides_out_a_storage_outage(
    api: LiveAPI, proxy: CountingProxy, worker: Any, make_user: Any, engine: Engine, tmp_path: Path
) -> None:
    officer = make_user("0815", "officer")
    rec = tmp_path / "rec"
    rec.mkdir()
    f = noise(rec / "long.mp4", 12 * PART + 5, seed=6)
    size = f.stat().st_size
    proxy.rate = 25e6
    log = tmp_path / "dock.log"
    proc = start_dock(api, officer, rec, tmp_path / "state.json", log, "--parallel", "2")
    wait_acknowledged(engine, proc, 2, log)
    proxy.stop()  # connections in flight are cut, new ones refused
    time.sleep(2)
    proxy.rate = None
    proxy.start()
    assert proc.wait(300) == 0, log.read_text()
    text = log.read_text()
    assert "storage (part" in text and "retrying for up to 300 s" in text
    # Only the parts cut in flight (at most one per parallel PUT) were sent again.
    assert size <= proxy.sent <= size + 2 * PART + 16 * HEADERS_PER_PART
    assert f"SAFE  long.mp4  {hashlib.sha256(f.read_bytes()).hexdigest()}" in text

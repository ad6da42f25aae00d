"""Two API processes and two workers on the same PostgreSQL, Redis and S3, as two hosts would run
them: uploads move between APIs, one PATCH at a time holds an upload whichever API it reaches, each
task runs once, the custody log stays dense under concurrent checkpoints, and two sweeps running at
once delete each expired original exactly once."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive.ingest.tus import encode_metadata
from archive.ledger.models import LogLeaf
from archive.media.models import Media
from archive.models import Event
from archive.storage import MinioStore
from retention import services as rs
from retention.models import RetentionStatus
from tests.conftest import LiveAPI, Proc, free_port, start_worker
from tests.retention.test_retention import archived
from tests.test_cluster import custody_verify, noise, small_clip
from tests.test_e2e import dock, wait_terminal

pytestmark = pytest.mark.e2e
MiB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def two_apis(env: dict[str, str], tmp_path: Path) -> Iterator[list[LiveAPI]]:
    from archive.config import get_settings
    from migrations import migrate

    migrate(get_settings())
    apis = []
    for name in ("api1", "api2"):
        (tmp_path / name).mkdir()
        port = free_port()
        api = LiveAPI(f"http://127.0.0.1:{port}", port, env, tmp_path / name)
        api.start()
        apis.append(api)
    yield apis
    for api in apis:
        api.stop()


@pytest.fixture
def two_workers(env: dict[str, str], tmp_path: Path) -> Iterator[list[Proc]]:
    procs = [start_worker(env, tmp_path / f"worker{i}.log") for i in (1, 2)]
    yield procs
    for p in procs:
        p.stop()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _create(api: LiveAPI, token: str, size: int, name: str) -> str:
    meta = {"filename": name, "path": name, "officer": "0815", "device": "BC-4711", "sha256": "deferred"}
    r = httpx.post(
        f"{api.url}/api/v1/uploads",
        headers={**TUS, **_auth(token), "Upload-Length": str(size), "Upload-Metadata": encode_metadata(meta)},
    )
    assert r.status_code == 201, r.text
    return r.headers["location"].rsplit("/", 1)[-1]


def _patch(
    api: LiveAPI, token: str, upload_id: str, offset: int, body: Any, length: int, sha: str | None = None
) -> httpx.Response:
    headers = {
        **TUS,
        **_auth(token),
        "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": str(offset),
        "Content-Length": str(length),
    }
    if sha:
        headers["Custody-Sha256"] = sha
    return httpx.patch(f"{api.url}/api/v1/uploads/{upload_id}", content=body, headers=headers, timeout=120)


def test_two_apis_two_workers_everything_once(
    two_apis: list[LiveAPI],
    two_workers: list[Proc],
    make_user: Any,
    engine: Engine,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    api1, api2 = two_apis
    officer = make_user("0815", "officer")
    auditor = make_user("audit", "auditor")

    # One upload, created on api1, written through both: the upload's state is shared, not per process.
    data = noise(tmp_path / "cross.bin", 12 * MiB, 7)
    blob = data.read_bytes()
    up = _create(api1, officer, len(blob), "cross.mp4")
    r = _patch(api1, officer, up, 0, blob[: 5 * MiB], 5 * MiB)
    assert r.status_code == 204 and int(r.headers["upload-offset"]) == 5 * MiB

    # While a PATCH to api2 holds the upload, a PATCH of the same bytes to api1 is refused (423).
    r_lock = redis.Redis.from_url(env["CUSTODY_REDIS_URL"])
    release = threading.Event()
    first: dict[str, httpx.Response] = {}

    def slow_body() -> Iterator[bytes]:
        yield blob[5 * MiB : 6 * MiB]
        release.wait(60)
        yield blob[6 * MiB : 10 * MiB]

    t = threading.Thread(
        target=lambda: first.update(r=_patch(api2, officer, up, 5 * MiB, slow_body(), 5 * MiB)), daemon=True
    )
    t.start()
    deadline = time.monotonic() + 30
    while not r_lock.exists(f"custody:upload-lock:{up}"):
        assert time.monotonic() < deadline and t.is_alive(), "the first PATCH never took the lock"
        time.sleep(0.01)
    second = _patch(api1, officer, up, 5 * MiB, blob[5 * MiB : 10 * MiB], 5 * MiB)
    assert second.status_code == 423, second.text
    release.set()
    t.join(60)
    assert first["r"].status_code == 204 and int(first["r"].headers["upload-offset"]) == 10 * MiB
    sha = hashlib.sha256(blob).hexdigest()
    r = _patch(api1, officer, up, 10 * MiB, blob[10 * MiB :], len(blob) - 10 * MiB, sha)
    assert r.status_code == 204 and int(r.headers["upload-offset"]) == len(blob)

    # Two stations dock at once, one per API, while auditors sign checkpoints through both APIs.
    recs = []
    for i in (1, 2):
        rec = tmp_path / f"rec{i}"
        rec.mkdir()
        noise(rec / f"long{i}.mp4", 11 * MiB, 10 + i)
        noise(rec / f"short{i}.mp4", 300_000, 20 + i)
        recs.append(rec)
    small_clip(recs[0] / "clip.mp4")
    outs: dict[int, Any] = {}
    docks = [
        threading.Thread(
            target=lambda i=i, api=api: outs.update({i: dock(api, officer, recs[i], tmp_path / f"s{i}.json")})
        )
        for i, api in enumerate((api1, api2))
    ]
    stop = threading.Event()
    signed: list[int] = []

    def sign_checkpoints(api: LiveAPI) -> None:
        while not stop.is_set():
            r = httpx.post(f"{api.url}/api/v1/audit/checkpoints", headers=_auth(auditor), timeout=60)
            assert r.status_code == 201, r.text
            signed.append(int(r.json()["tree_size"]))

    signers = [threading.Thread(target=sign_checkpoints, args=(a,)) for a in (api1, api2)]
    for th in docks + signers:
        th.start()
    for th in docks:
        th.join(600)
    stop.set()
    for th in signers:
        th.join(60)
    for i in (0, 1):
        assert outs[i].returncode == 0, outs[i].stdout + outs[i].stderr
    assert len(signed) >= 2

    with Session(engine) as s:
        media = list(s.exec(select(Media)))
    assert len(media) == 6  # cross + 2 x (long, short) + clip, each once
    for m in media:
        wait_terminal(api1, officer, m.id)
    with Session(engine) as s:
        per_media = Counter(
            (e.subject_id, e.action)
            for e in s.exec(select(Event).where(col(Event.subject_type) == "media"))
            if e.action in {"media.receive", "media.verify", "media.probe", "media.derive", "media.sign"}
        )
    for m in media:
        assert per_media[(m.id, "media.verify")] == 1, per_media
        assert per_media[(m.id, "media.sign")] == 1, per_media
    assert set(per_media.values()) == {1}  # no step ran twice for any item

    # The custody log: one more checkpoint, then every event is one leaf, indices dense from 0.
    r = httpx.post(f"{api2.url}/api/v1/audit/checkpoints", headers=_auth(auditor))
    assert r.status_code == 201
    with Session(engine) as s:
        n_leaves = s.exec(select(func.count()).select_from(LogLeaf)).one()
        max_idx = s.exec(select(func.max(LogLeaf.idx))).one()
        n_distinct = s.exec(select(func.count(func.distinct(LogLeaf.event_id)))).one()
    assert n_leaves == max_idx + 1 == n_distinct
    report = custody_verify(env)
    assert report["ok"], report["discrepancies"]
    assert report["media_checked"] == 6


def test_two_sweeps_at_once_delete_each_expired_original_once(
    two_workers: list[Proc], engine: Engine, store: MinioStore, env: dict[str, str]
) -> None:
    from workers.celery_app import make_celery

    app = make_celery()  # on this test's Redis (the module's app took the settings of its first import)
    old = datetime.now(UTC) - timedelta(days=900)
    due = [archived(engine, store, old) for _ in range(8)]
    kept = archived(engine, store, datetime.now(UTC) - timedelta(days=5))
    assert rs.classify_pending(engine, store) == 9

    # Beat sends one sweep a day; here two arrive at once, one on each worker (as after a failover
    # of the scheduler, or a second beat started by mistake).
    for _ in range(2):
        app.send_task("custody.retention_sweep")
    deadline = time.monotonic() + 120
    while True:  # both sweeps have finished when both logged their result
        done = [
            int(line.split("retention sweep: ")[1].split()[0])
            for w in two_workers
            for line in w.tail(10**7).splitlines()
            if "retention sweep: " in line
        ]
        if len(done) == 2:
            break
        assert time.monotonic() < deadline, [w.tail() for w in two_workers]
        time.sleep(0.2)
    assert sum(done) == len(due)  # between them, each expired item once
    with Session(engine) as s:
        deletes = Counter(
            e.subject_id for e in s.exec(select(Event).where(col(Event.action) == "retention.delete"))
        )
        statuses = {st.media_id: st for st in s.exec(select(RetentionStatus))}
    assert deletes == Counter({m.id: 1 for m in due})
    for m in due:
        assert statuses[m.id].deleted_at is not None
        assert store.versions(store.originals, m.object_key) == []
    assert statuses[kept.id].deleted_at is None and store.exists(store.originals, kept.object_key)

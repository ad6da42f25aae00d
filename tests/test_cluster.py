"""The archive on a real distributed Ceph cluster (deploy/cluster.sh: 1 monitor, 3 OSDs on three CRUSH
hosts, pools size 3 / min_size 2, 2 gateways behind haproxy), losing a node in the middle of a dock.

Every test here runs the real API, a real worker and the real dock against the cluster; the daemons
are really stopped (SIGTERM, as a host going away) and restarted. No timing is asserted: the tests
wait for states (upload offsets, HEALTH_OK, active+clean placement groups) and count bytes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.ingest.models import Upload
from archive.media.models import Media
from archive.storage import MinioStore
from cli.dock import Docker, ResumeState
from tests.conftest import ROOT, LiveAPI, Proc, make_env

# The same Object Lock tests as on one node, run here against the cluster (the module's `env`).
from tests.retention.test_retention import (
    test_flag_puts_a_legal_hold_and_clearing_it_needs_a_reason as test_cluster_legal_hold,
)
from tests.retention.test_retention import (
    test_locked_original_cannot_be_deleted_before_its_date as test_cluster_retention_lock,
)
from tests.test_e2e import dock, wait_terminal

# One at a time: node-loss tests stop and start the shared cluster's daemons. The xdist group asks
# for one worker; the lock below holds even where the group does not (pytest 9.2 renamed the node id
# attribute pytest-xdist 3.8 suffixes with the group, and the tests were spread over workers).
pytestmark = [pytest.mark.cluster, pytest.mark.e2e, pytest.mark.xdist_group("cluster")]

CLUSTER = ROOT / "deploy" / "cluster.sh"
MiB = 1024 * 1024
__all__ = ["test_cluster_legal_hold", "test_cluster_retention_lock"]


def cluster_sh(*args: str, timeout: float = 300) -> str:
    out = subprocess.run(
        ["bash", str(CLUSTER), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"cluster.sh {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return out.stdout


def ceph_status() -> dict[str, Any]:
    return dict(json.loads(cluster_sh("ceph", "status", "-f", "json")))


@pytest.fixture(scope="session")
def cluster() -> dict[str, str]:
    """The cluster's S3 endpoint (the load balancer) and keys; `make test` has started it already,
    run alone the tests start it (about 13 s on 2 cores)."""
    if not os.environ.get("CUSTODY_CLUSTER_S3_ENDPOINT"):
        for line in cluster_sh("up").splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            os.environ[key] = shlex.split(value)[0]
    return {
        "CUSTODY_S3_ENDPOINT": os.environ["CUSTODY_CLUSTER_S3_ENDPOINT"],
        "CUSTODY_S3_ACCESS_KEY": os.environ["CUSTODY_CLUSTER_S3_ACCESS_KEY"],
        "CUSTODY_S3_SECRET_KEY": os.environ["CUSTODY_CLUSTER_S3_SECRET_KEY"],
    }


@pytest.fixture
def env(
    services: dict[str, str],
    cluster: dict[str, str],
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    """As conftest's ``env``, with S3 on the cluster; every daemon is back and clean before a test."""
    cluster_sh("wait-clean")
    yield from _with_env(services, database_url, tmp_path, monkeypatch, cluster)


def _with_env(
    services: dict[str, str],
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cluster: dict[str, str],
) -> Iterator[dict[str, str]]:
    gen = make_env(services, database_url, tmp_path, monkeypatch, s3=cluster)
    values = next(gen)
    yield values
    # A bluestore cluster keeps its data between runs: drop what this test stored, except what
    # Object Lock still protects (a few KiB from the retention tests, until their dates pass).
    from archive.config import Settings

    store = MinioStore(Settings(**{k.removeprefix("CUSTODY_").lower(): v for k, v in values.items()}))
    for bucket in (store.originals, store.derived):
        with contextlib.suppress(Exception):
            for o in store.client.list_objects(bucket, recursive=True, include_version=True):
                with contextlib.suppress(Exception):
                    store.client.remove_object(bucket, o.object_name, version_id=o.version_id)
            store.client.remove_bucket(bucket)
    next(gen, None)


@pytest.fixture(autouse=True)
def one_cluster_test_at_a_time() -> Iterator[None]:
    """An exclusive lock for each test of this module, taken before its other fixtures (autouse)
    and released after their teardown (daemons started again), across xdist workers."""
    base = Path(os.environ.get("CLUSTER_BASE") or ROOT / "var" / "cluster")
    base.mkdir(parents=True, exist_ok=True)
    with (base / "tests.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
        fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def restore_daemons() -> Iterator[list[str]]:
    """Daemons a test stops; they are started again whatever happens to the test."""
    stopped: list[str] = []
    yield stopped
    for name in stopped:
        cluster_sh("start", name)


def noise(path: Path, size: int, seed: int) -> Path:
    with path.open("wb") as fh:
        for i in range(0, size, 4 * MiB):
            fh.write(hashlib.shake_256(f"{seed}-{i}".encode()).digest(min(4 * MiB, size - i)))
    return path


def small_clip(path: Path) -> Path:
    """One second of H.264: a media item whose proxy and poster get written during the test."""
    src = "testsrc2=size=320x240:rate=15"
    enc = ["-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)]
    ff = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", src]
    subprocess.run([*ff, *enc], check=True, timeout=60)
    return path


def wait_offset(engine: Engine, at_least: int, alive: Any) -> int:
    """Wait until the (single) upload has stored ``at_least`` bytes; returns its offset."""
    deadline = time.monotonic() + 120
    while True:
        with Session(engine) as s:
            up = s.exec(select(Upload).order_by(Upload.created_at.desc())).first()  # type: ignore[attr-defined]
            offset = up.offset if up else 0
        if offset >= at_least:
            return offset
        assert alive() and time.monotonic() < deadline, "the dock finished or stalled before the cut"
        time.sleep(0.02)


def custody_verify(env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "verify", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    report = dict(json.loads(out.stdout))
    assert out.returncode == (0 if report["ok"] else 1), out.stderr
    return report


def archived_hashes(engine: Engine) -> dict[str, str]:
    with Session(engine) as s:
        return {m.file_name: m.sha256 for m in s.exec(select(Media)).all()}


def s3_sha256(store: MinioStore, key: str) -> str:
    h = hashlib.sha256()
    with store.open_stream(store.originals, key) as chunks:  # with the object's SSE-C key
        for chunk in chunks:
            h.update(chunk)
    return h.hexdigest()


def test_osd_lost_mid_dock_then_recovered(
    live_api: LiveAPI,
    worker: Proc,
    make_user: Any,
    engine: Engine,
    store: MinioStore,
    env: dict[str, str],
    tmp_path: Path,
    restore_daemons: list[str],
) -> None:
    officer = make_user("0815", "officer")
    rec = tmp_path / "rec"
    rec.mkdir()
    big = noise(rec / "long.mp4", 64 * MiB, 1)
    small_clip(rec / "short.mp4")
    local = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in rec.iterdir()}

    result: dict[str, Any] = {}
    t = threading.Thread(
        # On the tus path (through the API), whose offset advances as the bytes arrive, so the OSD is
        # stopped mid-upload: the direct path's parallel part PUTs can finish before the cut is made.
        target=lambda: result.update(out=dock(live_api, officer, rec, tmp_path / "state.json", "--via-api")),
        daemon=True,
    )
    t.start()
    cut_at = wait_offset(engine, 16 * MiB, t.is_alive)
    cluster_sh("stop", "osd.1")  # one host of three gone, mid-upload
    restore_daemons.append("osd.1")
    assert cut_at < big.stat().st_size
    t.join(600)
    out = result["out"]
    assert out.returncode == 0, out.stdout + out.stderr

    with Session(engine) as s:
        ids = [m.id for m in s.exec(select(Media)).all()]
    items = [wait_terminal(live_api, officer, i) for i in ids]
    assert sorted(i["state"] for i in items) == ["ready", "unplayable"]
    status = ceph_status()
    assert status["osdmap"]["num_up_osds"] == 2  # everything above happened on two of three copies
    assert status["health"]["status"] != "HEALTH_OK"

    # Nothing lost: every file is archived once with the recorder's hash, the bytes in S3 hash to it,
    # and the full verify (objects, signatures, custody log) is clean, still degraded.
    assert archived_hashes(engine) == local
    with Session(engine) as s:
        for m in s.exec(select(Media)).all():
            assert s3_sha256(store, m.object_key) == m.sha256
    degraded = custody_verify(env)
    assert degraded["ok"], degraded["discrepancies"]
    assert degraded["media_checked"] == 2

    # The host comes back: Ceph recovers the writes it missed; HEALTH_OK, every PG active+clean.
    cluster_sh("start", "osd.1")
    restore_daemons.clear()
    cluster_sh("wait-clean")
    status = ceph_status()
    assert status["health"]["status"] == "HEALTH_OK"
    assert status["osdmap"]["num_up_osds"] == 3
    recovered = custody_verify(env)
    assert recovered["ok"], recovered["discrepancies"]
    assert recovered["objects_hashed"] == degraded["objects_hashed"]


def test_gateway_lost_mid_dock_resumes_without_resending(
    live_api: LiveAPI,
    worker: Proc,
    make_user: Any,
    engine: Engine,
    env: dict[str, str],
    tmp_path: Path,
    restore_daemons: list[str],
) -> None:
    """The gateway the archive talks to goes away: the load balancer sends the rest to the other one,
    and the dock never sends a byte twice that the server had acknowledged."""
    officer = make_user("0815", "officer")
    rec = tmp_path / "rec"
    rec.mkdir()
    big = noise(rec / "long.mp4", 96 * MiB, 2)
    size = big.stat().st_size

    # The tus path (PATCH through the API), whose byte accounting this test checks; the direct path
    # (presigned part PUTs) is the default and is what the other cluster tests dock with.
    docker = Docker(
        live_api.url, officer, "0815", "BC-4711", state=ResumeState(tmp_path / "state.json"), direct=False
    )
    # Every exchange that moves or reports the server's offset, in order.
    events: list[tuple[str, int, int, int | None]] = []  # (kind, offset sent, length, offset acknowledged)
    real_patch, real_offset = docker._patch, docker._offset

    def patch(url: str, offset: int, body: Any, length: int, sha: str | None) -> int:
        try:
            acked = real_patch(url, offset, body, length, sha)
        except Exception:
            events.append(("patch-failed", offset, length, None))
            raise
        events.append(("patch", offset, length, acked))
        return acked

    def head(url: str) -> int | None:
        got = real_offset(url)
        events.append(("head", -1, 0, got))
        return got

    docker._patch = patch  # type: ignore[method-assign]
    docker._offset = head  # type: ignore[method-assign]
    docker.RETRIES = 10

    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["pending"] = docker.send_file(big, "long.mp4")
            result["done"] = docker.confirm(result["pending"])
        except Exception as exc:  # noqa: BLE001 - handed to the test thread, which fails with it
            result["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    cut_at = wait_offset(engine, 24 * MiB, t.is_alive)
    cluster_sh("stop", "rgw.a")  # haproxy sends everything to rgw.a while it is up (balance first)
    restore_daemons.append("rgw.a")
    assert cut_at < size
    t.join(600)
    docker.close()
    assert "error" not in result, repr(result.get("error"))
    assert result["done"].ok, result["done"].message

    # Byte accounting: each PATCH starts exactly where the server last said it stood.
    acknowledged = 0
    sent = 0
    for kind, offset, length, acked in events:
        if kind == "head":
            assert acked is not None and acked >= acknowledged  # the server never forgets
            acknowledged = acked
            continue
        assert offset == acknowledged, f"PATCH at {offset} but the server had acknowledged {acknowledged}"
        sent += length
        if kind == "patch":
            assert acked is not None and acked > offset
            acknowledged = acked
    assert acknowledged == size
    # Whatever was sent more than once had never been acknowledged (lost with a failed PATCH).
    unacknowledged = sum(length for kind, _, length, _ in events if kind == "patch-failed")
    assert sent - size <= unacknowledged

    # The rest went through rgw.b (rgw.a is still down) and the archive is whole.
    assert ceph_status()["osdmap"]["num_up_osds"] == 3
    with Session(engine) as s:
        media = s.exec(select(Media)).one()
        up = s.exec(select(Upload)).one()
    assert up.state == "complete" and up.offset == size
    assert media.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    wait_terminal(live_api, officer, media.id)
    report = custody_verify(env)
    assert report["ok"], report["discrepancies"]
    health = httpx.get(f"{live_api.url}/healthz").json()
    assert health["checks"]["s3"] == "ok"

"""GET /metrics scraped while the real dock runs through the real API and worker (multiprocess mode:
the API and the worker's pool write their values to one folder, /metrics adds them up); who may
scrape; JSON log lines carrying the request id and the media id."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.ingest.tus import encode_metadata
from archive.media.models import Media
from archive.models import Event
from archive.storage import MinioStore
from retention import services as rs
from tests.conftest import ROOT, LiveAPI, Proc, _spawn, free_port, start_worker
from tests.retention.test_retention import archived
from tests.test_cluster import noise, small_clip
from tests.test_e2e import dock, wait_terminal

pytestmark = pytest.mark.e2e
MiB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


def parse(text: str) -> dict[str, float]:
    """Prometheus text format -> {'name{labels}': value} (labels as exposed, sorted by the client)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def scrape(api: LiveAPI, **kw: Any) -> dict[str, float]:
    r = httpx.get(f"{api.url}/metrics", **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


def shipped_queries() -> dict[str, str]:
    """{metric name: where} for every custody_* series deploy/monitoring's dashboard and alerts query."""
    monitoring = ROOT / "deploy" / "monitoring"
    exprs = [
        (f"panel {p['title']!r}", t["expr"])
        for p in json.loads((monitoring / "grafana-dashboard.json").read_text(encoding="utf-8"))["panels"]
        for t in p.get("targets", [])
    ]
    rules = yaml.safe_load((monitoring / "alerts.yml").read_text(encoding="utf-8"))
    exprs += [(f"alert {r['alert']}", r["expr"]) for g in rules["groups"] for r in g["rules"]]
    return {name: where for where, expr in exprs for name in re.findall(r"\bcustody_[a-z0-9_]+", expr)}


def delta(after: dict[str, float], before: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture
def observed(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[LiveAPI, Proc, dict[str, str]]]:
    """API and worker sharing one metrics folder, with JSON logs."""
    from archive.config import get_settings
    from migrations import migrate

    mdir = tmp_path / "metrics"
    mdir.mkdir()
    obs = {**env, "PROMETHEUS_MULTIPROC_DIR": str(mdir), "CUSTODY_LOG_JSON": "true"}
    migrate(get_settings())
    port = free_port()
    api = LiveAPI(f"http://127.0.0.1:{port}", port, obs, tmp_path)
    api.start()
    worker = start_worker(obs, tmp_path / "worker.log")
    yield api, worker, obs
    worker.stop()
    api.stop()


def test_counters_move_by_what_was_docked(
    observed: tuple[LiveAPI, Proc, dict[str, str]],
    make_user: Any,
    engine: Engine,
    store: MinioStore,
    tmp_path: Path,
) -> None:
    api, worker, obs = observed
    officer = make_user("0815", "officer")
    before = scrape(api)
    assert before["custody_workers_alive"] >= 1
    assert 'custody_queue_depth{queue="ingest"}' in before

    rec = tmp_path / "rec"
    rec.mkdir()
    noise(rec / "long.mp4", 12 * MiB, 1)
    noise(rec / "notes.mp4", 100_000, 2)
    small_clip(rec / "clip.mp4")
    sizes = [p.stat().st_size for p in rec.iterdir()]

    out: dict[str, Any] = {}
    t = threading.Thread(target=lambda: out.update(r=dock(api, officer, rec, tmp_path / "s.json")))
    t.start()
    during = []
    while t.is_alive():  # scraped while the dock runs: /metrics answers under load
        during.append(scrape(api))
        time.sleep(0.2)
    t.join()
    assert out["r"].returncode == 0, out["r"].stdout + out["r"].stderr
    assert during

    # One more upload whose declared SHA-256 is not what it sends: the worker quarantines it.
    bad = b"not the bytes that were declared" * 100
    meta = {"filename": "bad.mp4", "officer": "0815", "device": "BC-4711", "sha256": "0" * 64}
    r = httpx.post(
        f"{api.url}/api/v1/uploads",
        headers={
            **TUS,
            "Authorization": f"Bearer {officer}",
            "Upload-Length": str(len(bad)),
            "Upload-Metadata": encode_metadata(meta),
        },
    )
    assert r.status_code == 201, r.text
    r = httpx.patch(
        r.headers["location"]
        if r.headers["location"].startswith("http")
        else api.url + r.headers["location"],
        content=bad,
        headers={
            **TUS,
            "Authorization": f"Bearer {officer}",
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
        },
    )
    assert r.status_code == 204, r.text
    sizes.append(len(bad))

    with Session(engine) as s:
        ids = [m.id for m in s.exec(select(Media))]
    states = sorted(wait_terminal(api, officer, i)["state"] for i in ids)
    assert states == ["quarantined", "ready", "unplayable", "unplayable"]

    # A retention sweep with one expired original on it.
    expired = archived(engine, store, datetime.now(UTC) - timedelta(days=900))
    rs.classify_pending(engine, store)
    from workers.celery_app import make_celery

    app = make_celery()  # on this test's Redis (the module's app took the settings of its first import)
    app.send_task("custody.retention_sweep")
    deadline = time.monotonic() + 60
    while "retention sweep: " not in worker.tail(10**6):
        assert time.monotonic() < deadline, worker.tail()
        time.sleep(0.2)
    subprocess.run([sys.executable, "-m", "cli.main", "checkpoint"], env={**os.environ, **obs}, check=True)
    verify = subprocess.run(
        [sys.executable, "-m", "cli.main", "verify"], env={**os.environ, **obs}, check=False
    )
    assert verify.returncode == 0

    after = scrape(api)
    assert delta(after, before, "custody_docked_files_total") == 4
    assert delta(after, before, "custody_docked_bytes_total") == sum(sizes)
    assert delta(after, before, "custody_upload_duration_seconds_count") == 4
    assert delta(after, before, "custody_quarantines_total") == 1
    assert delta(after, before, 'custody_task_duration_seconds_count{task="custody.verify"}') == 4
    assert delta(after, before, 'custody_task_duration_seconds_count{task="custody.sign"}') == 3
    # Derive beside verify: an item is derived by its own derive task or inside verify (the one-read
    # damage check of an original that is its own proxy; a derive finished before verify passed), so
    # the derive task ran at most once per item derived, and each of the three is derived once.
    assert 1 <= delta(after, before, 'custody_task_duration_seconds_count{task="custody.derive"}') <= 3
    with Session(engine) as s:
        derived = s.exec(select(Event.subject_id).where(Event.action == "media.derive")).all()
    assert len(derived) == 3 and len(set(derived)) == 3
    assert delta(after, before, "custody_retention_deleted_total") == 1
    assert delta(after, before, "custody_retention_refused_total") == 0
    assert after['custody_media{state="quarantined"}'] == 1
    assert after['custody_media{state="ready"}'] == 1
    assert after['custody_media{state="deleted"}'] == 1  # the swept item: a tombstone remains
    assert after['custody_media{state="unplayable"}'] == 2
    assert 0 <= after["custody_checkpoint_age_seconds"] < 3600
    assert after["custody_verify_discrepancies"] == 0
    assert after['custody_queue_depth{queue="ingest"}'] == 0
    assert expired.id
    # Every series the shipped dashboard and alert rules query is one this scrape has: a renamed metric
    # would leave a panel empty or an alert that can never fire.
    exposed = {key.partition("{")[0] for key in after}
    assert set(shipped_queries()) <= exposed, set(shipped_queries()) - exposed

    # JSON lines everywhere; inside a request they carry its id, inside a task its media id.
    media_id = ids[0]
    rid = "drill-" + hashlib.sha256(media_id.encode()).hexdigest()[:12]
    r = httpx.get(
        f"{api.url}/api/v1/media/{media_id}",
        headers={"Authorization": f"Bearer {officer}", "X-Request-ID": rid},
    )
    assert r.status_code == 200 and r.headers["x-request-id"] == rid
    api.stop()
    worker.stop()
    for log in (api.proc.log if api.proc else None, worker.log):
        assert log is not None
        lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
        docs = [json.loads(ln) for ln in lines if ln.startswith("{")]
        assert docs and all({"request_id", "media_id", "message"} <= d.keys() for d in docs)
        if log is worker.log:
            assert any(d["media_id"] in ids for d in docs)  # task log lines name their media
        else:
            assert [ln for ln in lines if not ln.startswith("{")] == []  # every API line is JSON
            assert any(d["request_id"] == rid and d["media_id"] == media_id for d in docs)


def _outside_address() -> str | None:
    """This machine's address on a non-loopback interface, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        try:
            u.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            addr = str(u.getsockname()[0])
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


def _api_on_all_interfaces(env: dict[str, str], tmp_path: Path, name: str) -> tuple[Proc, int]:
    port = free_port()
    proc = _spawn(
        [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "0.0.0.0", "--port", str(port)],  # noqa: S104
        env,
        tmp_path / f"{name}.log",
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return proc, port
        except httpx.HTTPError:
            assert time.monotonic() < deadline and proc.popen.poll() is None, proc.tail()
            time.sleep(0.1)


def test_metrics_are_not_public(env: dict[str, str], tmp_path: Path) -> None:
    from archive.config import get_settings
    from migrations import migrate

    migrate(get_settings())
    outside = _outside_address()

    # No token configured: this host only, and not through a proxy.
    proc, port = _api_on_all_interfaces(env, tmp_path, "open")
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 200
        proxied = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"X-Forwarded-For": "10.0.0.9"})
        assert proxied.status_code == 403
        if outside:
            assert httpx.get(f"http://{outside}:{port}/metrics").status_code == 403
    finally:
        proc.stop()

    # A token configured: required from everywhere, loopback included.
    proc, port = _api_on_all_interfaces(
        {**env, "CUSTODY_METRICS_TOKEN": "scrape-secret-1"}, tmp_path, "token"
    )
    try:
        for host in ["127.0.0.1"] + ([outside] if outside else []):
            url = f"http://{host}:{port}/metrics"
            assert httpx.get(url).status_code == 401
            assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
            ok = httpx.get(url, headers={"Authorization": "Bearer scrape-secret-1"})
            assert ok.status_code == 200 and "custody_media" in ok.text
    finally:
        proc.stop()

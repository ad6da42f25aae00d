"""Pushes to the publicity platform end to end: the real API publishes and withdraws, a real Celery
worker on the publicity queue delivers, and a local HTTP receiver (started here) refuses the first
attempts. Every attempt is recorded; the signature verifies; a delivery that never gets through is
marked failed, logged, and goes through when a publisher retries it."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive.models import Event, Outcome
from archive.publicity.models import Delivery, DeliveryAttempt, DeliveryState
from archive.publicity.webhooks import verify_signature
from tests.api.test_publicity_api import ROSTER, _case_with_decision, _decision
from tests.case_factories import auth
from tests.conftest import LiveAPI, Proc, _spawn, free_port

pytestmark = pytest.mark.e2e
SECRET = "test-webhook-secret-0123456789"


@dataclass
class Receiver:
    """Answers 503 to the first ``fail_first`` attempts of each delivery, and always to events in
    ``always_fail``; 200 otherwise. Keeps every request."""

    fail_first: int = 2
    always_fail: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            delivery = headers.get("x-custody-delivery", "")
            seen = sum(1 for r in self.requests if r["delivery"] == delivery)
            status = (
                503 if seen < self.fail_first or headers.get("x-custody-event") in self.always_fail else 200
            )
            self.requests.append({"delivery": delivery, "headers": headers, "body": body, "status": status})
            return status


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            status = state.handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def _publicity_worker(env: dict[str, str], log: Path) -> Proc:
    proc = _spawn(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "publicity", "-c", "2",
         "--loglevel", "INFO", "-n", f"pub-{uuid.uuid4().hex[:6]}@%h"],
        env,
        log,
    )  # fmt: skip
    r = redis.Redis.from_url(env["CUSTODY_REDIS_URL"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if next(r.scan_iter("custody:worker-heartbeat:*"), None):
            return proc
        if proc.popen.poll() is not None:
            break
        time.sleep(0.2)
    proc.stop()
    raise RuntimeError(f"worker did not start:\n{proc.tail()}")


def _wait(engine: Engine, delivery_id: str, state: DeliveryState, timeout: float = 90) -> Delivery:
    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as s:
            row = s.get(Delivery, delivery_id)
            if row is not None and row.state is state:
                return row
        assert time.monotonic() < deadline, f"delivery {delivery_id} not {state}: {row}"
        time.sleep(0.3)


def test_pushes_are_signed_retried_recorded_and_failures_kept(
    env: dict[str, str],
    tmp_path: Path,
    engine: Engine,
    make_user: Callable[[str, str], str],
    receiver: tuple[Receiver, str],
) -> None:
    state, url = receiver
    extra = {
        "CUSTODY_PUBLICITY_WEBHOOK_URL": url,
        "CUSTODY_PUBLICITY_WEBHOOK_SECRET": SECRET,
        "CUSTODY_PUBLICITY_WEBHOOK_BACKOFF_S": "1",
        "CUSTODY_PUBLICITY_WEBHOOK_MAX_ATTEMPTS": "4",
    }
    full_env = {**env, **extra}
    port = free_port()
    api = LiveAPI(f"http://127.0.0.1:{port}", port, full_env, tmp_path)
    api.start()
    worker = _publicity_worker(full_env, tmp_path / "worker.log")
    try:
        admin, clerk, pub = (
            make_user("adm", "admin"),
            make_user("rm", "records-manager"),
            make_user("pub", "publisher"),
        )
        make_user("0815", "officer")
        base = f"{api.url}/api/v1/publicity"
        assert httpx.post(f"{base}/roster", headers=auth(admin), json=ROSTER).status_code == 201
        case_id = _case_with_decision(api.url, clerk, "H-1")
        d = httpx.post(f"{base}/decisions", headers=auth(pub), json=_decision(case_id)).json()
        red = httpx.post(f"{base}/decisions/{d['id']}/redactions", headers=auth(pub), json={}).json()
        r = httpx.post(
            f"{base}/decisions/{d['id']}/approve",
            headers=auth(pub),
            json={"version": 1, "sha256": red["sha256"]},
        )
        assert r.status_code == 200, r.text

        published = httpx.get(f"{base}/deliveries", headers=auth(pub)).json()
        assert len(published) == 1 and published[0]["event"] == "decision.published"
        row = _wait(engine, published[0]["id"], DeliveryState.DELIVERED)
        assert row.attempts == 3 and row.last_status == 200
        with Session(engine) as s:
            attempts = s.exec(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.delivery_id == row.id)
                .order_by(col(DeliveryAttempt.attempt))
            ).all()
        assert [a.status_code for a in attempts] == [503, 503, 200] and attempts[0].error == "HTTP 503"
        got = [q for q in state.requests if q["delivery"] == row.id]
        assert len(got) == 3 and len({q["body"] for q in got}) == 1  # the same body every time
        for q in got:
            h = q["headers"]
            assert verify_signature(SECRET, h["x-custody-timestamp"], q["body"], h["x-custody-signature"])
            assert not verify_signature(
                "another-secret-xxxxxxxx", h["x-custody-timestamp"], q["body"], h["x-custody-signature"]
            )
        doc = json.loads(got[0]["body"])
        assert doc["event"] == "decision.published" and doc["data"]["ref"] == d["ref"]
        assert doc["data"]["text"] == red["text"] and d["id"] not in got[0]["body"].decode()
        attempts_api = httpx.get(f"{base}/deliveries/{row.id}/attempts", headers=auth(pub)).json()
        assert [a["status_code"] for a in attempts_api] == [503, 503, 200]

        # The platform refuses withdrawals for longer than the retries last: failed, logged, kept.
        state.always_fail.add("decision.withdrawn")
        r = httpx.post(
            f"{base}/decisions/{d['id']}/withdraw",
            headers=auth(pub),
            json={"ground": "revoked", "reason": "依法撤销"},
        )
        assert r.status_code == 200
        withdrawn = [
            x
            for x in httpx.get(f"{base}/deliveries", headers=auth(pub)).json()
            if x["event"] == "decision.withdrawn"
        ]
        failed = _wait(engine, withdrawn[0]["id"], DeliveryState.FAILED)
        assert failed.attempts == 4 and failed.last_error == "HTTP 503"
        with Session(engine) as s:
            ev = s.exec(select(Event).where(Event.action == "publicity.webhook.failed")).one()
            assert ev.subject_id == failed.id and ev.outcome is Outcome.FAILED
        listed = httpx.get(f"{base}/deliveries?state=failed", headers=auth(pub)).json()
        assert [x["id"] for x in listed] == [failed.id]

        # The platform is back; a publisher queues it again.
        state.always_fail.clear()
        assert httpx.post(f"{base}/deliveries/{failed.id}/retry", headers=auth(admin)).status_code == 403
        assert httpx.post(f"{base}/deliveries/{failed.id}/retry", headers=auth(pub)).status_code == 200
        done = _wait(engine, failed.id, DeliveryState.DELIVERED)
        assert done.attempts == 5
        body = json.loads([q for q in state.requests if q["delivery"] == failed.id][-1]["body"])
        assert body["data"]["text"] is None and body["data"]["withdrawn"]["reason"] == "依法撤销"
    finally:
        worker.stop()
        api.stop()

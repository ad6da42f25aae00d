"""One beat in the installation, however many are started (workers/beat_leader.py): real Celery beat
processes on the test Redis. The second stands by and says so; it takes over at once when the leader
stops cleanly, within the lease when the leader is killed; a leader whose lease is gone stops itself,
and one cut off from Redis stops only once the outage lasts as long as the lease."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy.engine import make_url

from tests.conftest import Proc, _spawn
from tests.tcp_proxy import CountingProxy
from workers.beat_leader import LEASE_KEY

LEASE_S = 3  # short, so the takeover after a kill is quick; the default is 30 s


def _until(what: str, check: Callable[[], bool], procs: list[Proc], wait_s: float = 60) -> None:
    deadline = time.monotonic() + wait_s
    while not check():
        assert time.monotonic() < deadline, f"{what}:\n" + "\n---\n".join(p.tail() for p in procs)
        time.sleep(0.2)


@pytest.fixture
def beats(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[str], Proc]]:
    started: list[Proc] = []

    def start(name: str) -> Proc:
        cmd = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat"]
        cmd += ["-s", str(tmp_path / f"{name}-schedule"), "--loglevel", "INFO"]
        proc = _spawn(cmd, {**env, "CUSTODY_BEAT_LEASE_S": str(LEASE_S)}, tmp_path / f"{name}.log")
        started.append(proc)
        return proc

    yield start
    for p in started:
        p.stop(sig_kill=True)


def _holder(env: dict[str, str]) -> str:
    value = redis.Redis.from_url(env["CUSTODY_REDIS_URL"]).get(LEASE_KEY)
    return value.decode() if isinstance(value, bytes) else ""


def test_one_beat_leads_the_other_stands_by_and_takes_over(
    env: dict[str, str], beats: Callable[[str], Proc]
) -> None:
    a = beats("a")
    _until("a leads", lambda: "beat: leading" in a.tail(), [a])
    assert _holder(env).endswith(f":{a.popen.pid}")
    b = beats("b")
    _until("b stands by", lambda: "beat: standing by" in b.tail(), [a, b])
    assert "beat: leading" not in b.tail() and _holder(env).endswith(f":{a.popen.pid}")

    # a clean stop hands over at once (the lease is released, not left to run out)
    a.popen.send_signal(signal.SIGTERM)
    a.popen.wait(30)
    _until("b takes over", lambda: "beat: leading" in b.tail(), [a, b], wait_s=LEASE_S * 3)
    assert _holder(env).endswith(f":{b.popen.pid}")

    # killed, the leader's lease runs out and the standby leads after it
    c = beats("c")
    _until("c stands by", lambda: "beat: standing by" in c.tail(), [b, c])
    b.stop(sig_kill=True)
    _until("c takes over", lambda: "beat: leading" in c.tail(), [b, c])
    assert _holder(env).endswith(f":{c.popen.pid}")


def test_a_leader_that_lost_its_lease_stops(env: dict[str, str], beats: Callable[[str], Proc]) -> None:
    a = beats("a")
    _until("a leads", lambda: "beat: leading" in a.tail(), [a])
    client = redis.Redis.from_url(env["CUSTODY_REDIS_URL"])
    client.set(LEASE_KEY, "elsewhere:1", px=LEASE_S * 1000)  # another beat holds it now
    _until("a stops", lambda: a.popen.poll() is not None, [a])
    assert "lost the leader lease" in a.tail()
    assert client.get(LEASE_KEY) == b"elsewhere:1"  # a did not release what it no longer held


def test_a_redis_outage_shorter_than_the_lease_is_ridden_out_a_longer_one_stops_the_leader(
    env: dict[str, str], beats: Callable[[str], Proc]
) -> None:
    """The beat reaches Redis through a proxy the test takes down: a short outage (a Redis restart)
    leaves the leader leading; one as long as the lease stops it, since another beat may lead by then."""
    direct = env["CUSTODY_REDIS_URL"]
    url = make_url(direct)
    proxy = CountingProxy(f"{url.host}:{url.port}").start()
    try:
        env["CUSTODY_REDIS_URL"] = url.set(port=proxy.port).render_as_string(hide_password=False)
        a = beats("a")
        _until("a leads", lambda: "beat: leading" in a.tail(), [a])
        proxy.stop()
        _until("a notices", lambda: "cannot renew the leader lease" in a.tail(), [a])
        proxy.start()  # back within the lease
        renewed = a.tail(10**7).count("cannot renew")
        # two more lease periods: renewed through the proxy again, still leading, never stopped
        time.sleep(2 * LEASE_S)
        assert a.popen.poll() is None and "lost the leader lease" not in a.tail(), a.tail()
        assert a.tail(10**7).count("cannot renew") == renewed  # no failure since Redis came back
        assert _holder({"CUSTODY_REDIS_URL": direct}).endswith(f":{a.popen.pid}")
        proxy.stop()  # now for longer than the lease
        _until("a stops", lambda: a.popen.poll() is not None, [a])
        assert "Redis unreachable for" in a.tail()
    finally:
        proxy.stop()

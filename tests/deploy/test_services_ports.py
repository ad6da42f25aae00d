"""A second checkout's ``make test`` beside this one: deploy/services.sh's test profile moves aside.

The suite's own test services are up on their ports (this run's environment names them). A private copy of
the test profile (its own state folder, no port given) must come up on other ports, keep them for every
later call, and leave nothing listening after ``down --purge``. Ports given explicitly are used as given:
taken, they stop ``up`` with the reason and no export line.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from minio import Minio
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "deploy" / "services.sh"
GIVEN = ("SERVICES_REDIS_PORT", "SERVICES_PG_PORT", "SERVICES_RGW_PORT", "SERVICES_RGW_MON_PORT")


def _services(action: str, var: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in GIVEN}
    return subprocess.run(
        ["bash", str(SERVICES), action, "test", *(["--purge"] if action == "down" else [])],
        env={**env, "SERVICES_VAR": str(var), **extra},
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


def _exports(out: str) -> dict[str, str]:
    env = {}
    for line in out.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = shlex.split(value)[0]
    return env


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def second_checkout() -> Iterator[Path]:
    top = Path(tempfile.mkdtemp(prefix="custody-second-"))
    top.chmod(0o711)  # the postgres user passes through to its data folder
    # var/ made 0700 by someone else first, as deploy/cluster.sh does when `make test` starts it beside
    # services.sh: up must still let the postgres user through
    (top / "var").mkdir(mode=0o700)
    try:
        yield top / "var"
    finally:
        _services("down", top / "var")
        subprocess.run(["rm", "-rf", str(top)], check=False)


def test_a_second_checkout_takes_other_ports_and_keeps_them(
    services: dict[str, str], second_checkout: Path
) -> None:
    ours = {
        "redis": make_url(services["CUSTODY_REDIS_URL"]).port,
        "postgres": make_url(services["CUSTODY_TEST_DATABASE_URL"]).port,
        "s3": int(services["CUSTODY_S3_ENDPOINT"].rsplit(":", 1)[1]),
    }
    up = _services("up", second_checkout)
    assert up.returncode == 0, up.stderr[-3000:]
    got = _exports(up.stdout)
    theirs = {
        "redis": make_url(got["CUSTODY_REDIS_URL"]).port,
        "postgres": make_url(got["CUSTODY_TEST_DATABASE_URL"]).port,
        "s3": int(got["CUSTODY_S3_ENDPOINT"].rsplit(":", 1)[1]),
    }
    for name in ours:
        assert theirs[name] != ours[name], (name, theirs, ours)

    # each of the second copy's services answers on its own port, with its own secrets
    assert redis.Redis.from_url(got["CUSTODY_REDIS_URL"]).ping()
    pg = make_url(got["CUSTODY_TEST_DATABASE_URL"])
    with psycopg.connect(host=pg.host, port=pg.port, user=pg.username, dbname=pg.database) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    s3 = Minio(
        got["CUSTODY_S3_ENDPOINT"],
        access_key=got["CUSTODY_S3_ACCESS_KEY"],
        secret_key=got["CUSTODY_S3_SECRET_KEY"],
        secure=False,
    )
    assert s3.list_buckets() == []
    # ... and the suite's own services are untouched (still answering with this run's password)
    assert redis.Redis.from_url(services["CUSTODY_REDIS_URL"]).ping()

    # every later call finds the same ports
    assert (second_checkout / "test" / "ports.env").is_file()
    status = _services("status", second_checkout)
    assert status.returncode == 0, status.stdout + status.stderr
    for port in theirs.values():
        assert f"127.0.0.1:{port}" in status.stdout
    again = _services("up", second_checkout)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _exports(again.stdout) == got

    down = _services("down", second_checkout)
    assert down.returncode == 0, down.stderr[-3000:]
    for port in theirs.values():
        assert not _listening(port), port
    assert redis.Redis.from_url(services["CUSTODY_REDIS_URL"]).ping()


def test_ports_given_and_taken_stop_up_with_the_reason(
    services: dict[str, str], second_checkout: Path
) -> None:
    taken = make_url(services["CUSTODY_REDIS_URL"]).port
    assert taken is not None
    up = _services("up", second_checkout, SERVICES_REDIS_PORT=str(taken))
    assert up.returncode != 0
    assert f"port {taken} is taken by a process that is not ours" in up.stderr
    assert up.stdout == ""  # nothing for a caller's eval
    assert redis.Redis.from_url(services["CUSTODY_REDIS_URL"]).ping()

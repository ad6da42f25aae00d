"""Finding 2 of issue 10: deploy/services.sh generates its secrets and the services require them.

Runs a private copy of the test profile (its own state folder and ports), never the shared one.
"""

from __future__ import annotations

import os
import shlex
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from minio import Minio
from minio.error import S3Error

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "deploy" / "services.sh"
LEGACY_ACCESS = "CUSTODYACCESSKEY0001"
LEGACY_SECRET = "custodysecretkey000000000000000000000001"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(action: str, overrides: dict[str, str]) -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(SERVICES), action, "test"],
        env={**os.environ, **overrides},
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    env = {}
    for line in out.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = shlex.split(value)[0]
    return env


@pytest.fixture(scope="module")
def private_services() -> Iterator[tuple[dict[str, str], Path]]:
    top = Path(tempfile.mkdtemp(prefix="custody-services-"))
    top.chmod(0o711)  # the postgres user passes through to its data folder
    base = 17800 + 10 * int(os.environ.get("CUSTODY_TEST_SLOT", "0"))  # (cluster.sh: 17000-17099)
    overrides = {
        "SERVICES_VAR": str(top / "var"),
        "SERVICES_REDIS_PORT": str(_free_port()),
        "SERVICES_PG_PORT": str(_free_port()),
        "SERVICES_RGW_PORT": str(_free_port()),
        "SERVICES_RGW_MON_PORT": str(_free_port()),
        "SERVICES_RGW_OSD_PORTS": f"{base}-{base + 9}",
    }
    try:
        yield overrides, top / "var" / "test"
    finally:
        subprocess.run(
            ["bash", str(SERVICES), "down", "test", "--purge"],
            env={**os.environ, **overrides},
            capture_output=True,
            check=False,
            timeout=120,
        )
        subprocess.run(["rm", "-rf", str(top)], check=False)


def _minio(env: dict[str, str], access: str, secret: str) -> Minio:
    return Minio(env["CUSTODY_S3_ENDPOINT"], access_key=access, secret_key=secret, secure=False)


def test_services_generate_secrets_and_require_them(private_services: tuple[dict[str, str], Path]) -> None:
    overrides, state = private_services
    env = _run("up", overrides)

    # generated, private, and printed in the export lines
    secrets = state / "secrets.env"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    text = secrets.read_text()
    assert env["CUSTODY_S3_ACCESS_KEY"] in text
    assert env["CUSTODY_S3_SECRET_KEY"] in text
    assert env["CUSTODY_S3_ACCESS_KEY"] != LEGACY_ACCESS
    assert len(env["CUSTODY_S3_SECRET_KEY"]) >= 32
    assert LEGACY_SECRET not in (ROOT / "deploy" / "services.sh").read_text()
    assert LEGACY_SECRET not in (ROOT / "deploy" / "rgw-up.sh").read_text()

    # S3: the generated keys work, the old fixed ones do not
    _minio(env, env["CUSTODY_S3_ACCESS_KEY"], env["CUSTODY_S3_SECRET_KEY"]).list_buckets()
    with pytest.raises(S3Error):
        _minio(env, LEGACY_ACCESS, LEGACY_SECRET).list_buckets()

    # Redis: requires the password the URL carries, which is on no command line
    url = env["CUSTODY_REDIS_URL"]
    assert redis.Redis.from_url(url).ping()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=port).ping()
    pid = int((state / "redis" / "redis.pid").read_text().split()[0])
    password = url.split("@")[0].rsplit(":", 1)[1]
    assert password not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    assert stat.S_IMODE((state / "redis" / "custody-redis.conf").stat().st_mode) == 0o600

    # a second `up` is idempotent: same secrets
    assert _run("up", overrides) == env

    # rotation: the running services take the new secrets at once, the old ones stop working
    new = _run("rotate-secrets", overrides)
    assert new["CUSTODY_S3_SECRET_KEY"] != env["CUSTODY_S3_SECRET_KEY"]
    assert new["CUSTODY_REDIS_URL"] != env["CUSTODY_REDIS_URL"]
    _minio(new, new["CUSTODY_S3_ACCESS_KEY"], new["CUSTODY_S3_SECRET_KEY"]).list_buckets()
    with pytest.raises(S3Error):
        _minio(env, env["CUSTODY_S3_ACCESS_KEY"], env["CUSTODY_S3_SECRET_KEY"]).list_buckets()
    assert redis.Redis.from_url(new["CUSTODY_REDIS_URL"]).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(env["CUSTODY_REDIS_URL"]).ping()


def test_services_left_running_by_an_older_script_are_brought_to_the_secrets(
    private_services: tuple[dict[str, str], Path],
) -> None:
    """The state an older services.sh left: Redis without a password, S3 on the fixed keys, no
    secrets file. The next `up` fixes all three without a restart."""
    overrides, state = private_services
    env = _run("up", overrides)
    r = redis.Redis.from_url(env["CUSTODY_REDIS_URL"])
    r.config_set("requirepass", "")
    conf = state / "rgw" / "ceph.conf"
    subprocess.run(
        ["radosgw-admin", "-c", str(conf), "key", "create", "--uid=custody", "--key-type=s3",
         f"--access-key={LEGACY_ACCESS}", f"--secret-key={LEGACY_SECRET}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    (state / "secrets.env").unlink()
    assert redis.Redis(host="127.0.0.1", port=int(overrides["SERVICES_REDIS_PORT"])).ping()
    _minio(env, LEGACY_ACCESS, LEGACY_SECRET).list_buckets()

    new = _run("up", overrides)
    assert new["CUSTODY_S3_ACCESS_KEY"] != env["CUSTODY_S3_ACCESS_KEY"]
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=int(overrides["SERVICES_REDIS_PORT"])).ping()
    assert redis.Redis.from_url(new["CUSTODY_REDIS_URL"]).ping()
    with pytest.raises(S3Error):
        _minio(env, LEGACY_ACCESS, LEGACY_SECRET).list_buckets()
    _minio(new, new["CUSTODY_S3_ACCESS_KEY"], new["CUSTODY_S3_SECRET_KEY"]).list_buckets()

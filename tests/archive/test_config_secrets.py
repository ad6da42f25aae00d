"""Finding 2 of issue 10: no default secrets, private data files.

The refusal is decided by the settings (archive.config) so that every entry point - API, workers,
CLI - refuses the same way through get_settings().
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from archive.config import Settings, get_settings
from archive.db import make_engine

ROOT = Path(__file__).resolve().parents[2]
STRONG = "8968395da695dbf04a6c07fa25eefb98f7fd81604204c924"
GOOD = {
    "s3_endpoint": "s3.agency.example:443",
    "s3_secure": True,
    "s3_access_key": "CUSTODY3830616CEBF7FD",
    "s3_secret_key": SecretStr(STRONG),
    "redis_url": f"redis://:{STRONG}@redis.agency.example:6379/0",
    "database_url": f"postgresql+psycopg://custody:{STRONG}@db.agency.example/custody",
}


@pytest.fixture(autouse=True)
def no_custody_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read CUSTODY_* variables; these tests decide every value themselves."""
    for name in list(os.environ):
        if name.startswith("CUSTODY_") and name != "CUSTODY_TEST_SLOT":
            monkeypatch.delenv(name)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_settings_ship_no_s3_credentials() -> None:
    s = Settings()
    assert s.s3_access_key == ""
    assert s.s3_secret_key.get_secret_value() == ""


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"s3_access_key": "CUSTODYACCESSKEY0001"}, "CUSTODY_S3_ACCESS_KEY"),
        ({"s3_secret_key": SecretStr("custodysecretkey000000000000000000000001")}, "CUSTODY_S3_SECRET_KEY"),
        ({"s3_secret_key": SecretStr("")}, "CUSTODY_S3_SECRET_KEY"),
        ({"s3_secret_key": SecretStr("minioadmin")}, "CUSTODY_S3_SECRET_KEY"),
        ({"redis_url": "redis://redis.agency.example:6379/0"}, "CUSTODY_REDIS_URL"),
        ({"database_url": "postgresql+psycopg://custody@db.agency.example/custody"}, "CUSTODY_DATABASE_URL"),
        ({"storage_encryption": False}, "CUSTODY_STORAGE_ENCRYPTION"),
        ({"s3_secure": False}, "CUSTODY_S3_SECURE"),
        ({"signing_backend": "pkcs11"}, "CUSTODY_PKCS11_PIN"),
    ],
)
def test_production_refuses_default_or_empty_secrets(change: dict[str, object], reason: str) -> None:
    Settings(profile="production", **GOOD)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=reason):
        Settings(profile="production", **{**GOOD, **change})  # type: ignore[arg-type]


def test_embedded_and_test_may_run_without_secrets_only_on_loopback() -> None:
    Settings(profile="embedded")  # all on 127.0.0.1: allowed
    Settings(profile="test")
    with pytest.raises(ValidationError, match=r"off loopback.*CUSTODY_REDIS_URL"):
        Settings(profile="embedded", redis_url="redis://10.0.0.5:6379/0")
    with pytest.raises(ValidationError, match=r"off loopback.*CUSTODY_S3_SECRET_KEY"):
        Settings(profile="test", s3_endpoint="s3.agency.example:443")


def test_get_settings_refuses_so_every_entry_point_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTODY_PROFILE", "production")
    monkeypatch.setenv("CUSTODY_S3_ACCESS_KEY", "CUSTODYACCESSKEY0001")
    monkeypatch.setenv("CUSTODY_S3_SECRET_KEY", "custodysecretkey000000000000000000000001")
    get_settings.cache_clear()
    try:
        with pytest.raises(ValidationError, match="refusing to start the production profile"):
            get_settings()
        # and the CLI says so and stops before doing anything
        out = subprocess.run(
            [sys.executable, "-m", "cli.main", "migrate"],
            env={**os.environ},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode != 0
        assert "refusing to start the production profile" in out.stderr
    finally:
        get_settings.cache_clear()


def test_sqlite_database_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        db = tmp_path / "var" / "custody.db"
        engine = make_engine(f"sqlite:///{db}")
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.commit()
        engine.dispose()
        assert mode(db.parent) == 0o700
        assert mode(db) == 0o600
        for extra in (db.with_name("custody.db-wal"), db.with_name("custody.db-shm")):
            if extra.exists():
                assert mode(extra) == 0o600
        # an installation made before the rule is tightened on the next start
        db.chmod(0o644)
        make_engine(f"sqlite:///{db}").dispose()
        assert mode(db) == 0o600
    finally:
        os.umask(old)


def test_cli_creates_data_keys_and_database_private(tmp_path: Path) -> None:
    """`custody migrate` + key generation on a fresh data folder: folders 0700, files 0600."""
    data = tmp_path / "fresh"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")},
        "CUSTODY_DATA_DIR": str(data),
    }
    code = (
        "import os; os.umask(0o022)\n"
        "from cli.main import main\n"
        "main(['keys', 'rotate'], standalone_mode=False)\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, cwd=ROOT)
    assert mode(data / "custody.db") == 0o600
    keys = data / "keys"
    assert mode(keys) == 0o700
    files = [p for p in keys.rglob("*") if p.is_file()]
    assert files
    for f in files:
        assert mode(f) == 0o600, f

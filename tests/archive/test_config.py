"""Settings refuse a default or empty secret unless the profile is the embedded or test one, with every
service on loopback."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from archive.config import DEFAULT_S3_SECRET_KEY, Settings


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test passes: not the CUSTODY_* variables of the shell that runs pytest."""
    for key in [k for k in os.environ if k.startswith("CUSTODY_")]:
        monkeypatch.delenv(key)


# own S3 keys, a Redis password and TLS to a remote S3 server (SSE-C keys travel with each request):
# what production needs (issue 10; tests/archive/test_config_secrets.py has each refusal)
OWN = {
    "s3_access_key": "agency-key",
    "s3_secret_key": "a-secret-of-our-own",
    "redis_url": "redis://:8968395da695dbf04a6c07fa25eefb98@127.0.0.1:6379/0",
    "s3_secure": True,
}


def test_embedded_default_on_loopback_is_accepted() -> None:
    s = Settings()
    assert s.profile == "embedded" and s.on_loopback()
    assert Settings(
        profile="test", database_url="postgresql+psycopg://custody@127.0.0.1:54329/x"
    ).on_loopback()


@pytest.mark.parametrize(
    "values",
    [
        {"profile": "production"},
        {"profile": "production", "s3_access_key": "agency-key", "s3_secret_key": ""},
        {"profile": "production", "s3_access_key": "", "s3_secret_key": "a-secret-of-our-own"},
        {"s3_endpoint": "minio:9000"},  # embedded, but S3 on another machine
        {"profile": "test", "redis_url": "redis://10.0.0.2:6379/0"},
        {"profile": "test", "database_url": "postgresql+psycopg://custody@db.example:5432/custody"},
        {"profile": "embedded", "s3_secret_key": DEFAULT_S3_SECRET_KEY, "s3_endpoint": "192.0.2.7:7480"},
    ],
)
def test_default_or_empty_secret_is_refused_off_loopback_or_in_production(values: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="CUSTODY_S3_"):
        Settings(**values)  # type: ignore[arg-type]


def test_own_secrets_are_accepted_anywhere() -> None:
    assert Settings(profile="production", s3_endpoint="minio:9000", **OWN).profile == "production"  # type: ignore[arg-type]
    assert Settings(s3_endpoint="[::1]:7480").on_loopback()

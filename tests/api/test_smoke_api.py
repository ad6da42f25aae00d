"""The API answers health and key requests against the real services."""

from __future__ import annotations

import httpx

from tests.conftest import LiveAPI


def test_keys_are_published_and_health_names_missing_worker(live_api: LiveAPI) -> None:
    keys = httpx.get(f"{live_api.url}/api/v1/keys").json()["keys"]
    assert len(keys) == 1 and keys[0]["algorithm"] == "ed25519"
    assert keys[0]["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    health = httpx.get(f"{live_api.url}/healthz")
    assert health.status_code == 503
    body = health.json()
    assert (
        body["checks"]["database"] == "ok"
        and body["checks"]["s3"] == "ok"
        and body["checks"]["redis"] == "ok"
    )
    assert body["checks"]["worker"].startswith("down")
